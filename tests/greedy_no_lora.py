"""Helper for test_vllm.py: greedy answers from a vLLM engine started *without* LoRA support.

Run as a subprocess (vLLM spawns processes, so the work sits under __main__)."""

import json
import sys

if __name__ == "__main__":
    from synthgen.engine import Request
    from synthgen.engine.vllm_engine import VLLMEngine

    model, prompts = sys.argv[1], json.loads(sys.argv[2])
    engine = VLLMEngine(model, enable_lora=False, dtype="float32", enforce_eager=True)
    out = engine.generate([Request(p, max_tokens=12, temperature=0.0) for p in prompts])
    engine.close()
    print("RESULT " + json.dumps([c.text for c in out]))
