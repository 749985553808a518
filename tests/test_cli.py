import json
import subprocess
import sys
import time

from click.testing import CliRunner

from synthgen.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_help_is_instant_and_lists_commands():
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthgen", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "sample" in proc.stdout and "models" in proc.stdout
    # heavy imports (torch, vllm) would take seconds; this is an import-laziness check, not a benchmark
    proc = subprocess.run([sys.executable, "-c", "import synthgen.cli, sys; print('torch' in sys.modules, 'vllm' in sys.modules)"],
                          capture_output=True, text=True)
    assert proc.stdout.split() == ["False", "False"]
    assert time.perf_counter() - t < 30


def test_sample_help_has_examples():
    r = run("sample", "--help")
    assert r.exit_code == 0 and "Examples:" in r.output and "--adapter" in r.output


def _one_line_error(r):
    assert r.exit_code != 0
    lines = [line for line in r.output.strip().splitlines() if line]
    assert len(lines) == 1, r.output
    assert lines[0].startswith("Error:")
    assert "Traceback" not in r.output
    return lines[0]


def test_empty_prompt_is_one_line_error():
    assert "prompt is empty" in _one_line_error(run("sample", "   "))


def test_n_below_one_is_one_line_error():
    assert "--n must be >= 1" in _one_line_error(run("sample", "hi", "--n", "0"))


def test_unknown_model_is_one_line_error():
    assert "unknown model 'nope'" in _one_line_error(run("sample", "hi", "--model", "nope"))


def test_missing_adapter_is_one_line_error(tmp_path):
    assert "does not exist" in _one_line_error(run("sample", "hi", "--adapter", str(tmp_path / "missing")))


def test_corrupt_adapter_is_one_line_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{not json")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"x")
    assert "corrupt" in _one_line_error(run("sample", "hi", "--adapter", str(tmp_path)))


def test_adapter_without_weights_is_one_line_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8}))
    assert "no adapter weights" in _one_line_error(run("sample", "hi", "--adapter", str(tmp_path)))


def test_openai_engine_without_endpoint_is_one_line_error():
    assert "--endpoint" in _one_line_error(run("sample", "hi", "--engine", "openai"))


def test_models_lists_default(monkeypatch):
    r = run("models", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.output)
    assert rows[0]["name"] == "smollm2-135m" and rows[0]["default"] is True
    assert rows[0]["cached"] is False  # the isolated SYNTHGEN_HOME is empty


def test_every_command_has_examples_and_every_option_help():
    for name, cmd in cli.commands.items():
        assert "Example" in (cmd.help or ""), f"{name} --help has no examples"
        for p in cmd.params:
            if p.param_type_name == "option":
                assert p.help, f"{name} {p.opts} has no --help text"


def test_build_adapter_bad_settings_are_one_line_errors(tmp_path):
    for args, msg in ((["--lr", "0"], "`lr` must be > 0"), (["--steps", "0"], "`steps` must be >= 1"),
                      (["--gamma", "-1"], "`gamma` must be >= 0"), (["--rank", "0"], "`rank` must be >= 1"),
                      (["--audit-prompts", "0"], "`audit_prompts` must be >= 1"), (["--layers", "0"], "`layers` must be >= 1"),
                      (["--keep-weight", "-1"], "`keep_weight` must be in [0, 10], got -1.0")):
        r = run("build-adapter", "adapters/tasks/weekdays.yaml", "--out", str(tmp_path / "a"), *args)
        assert msg in _one_line_error(r)
        assert not (tmp_path / "a").exists()


def test_audit_and_check_targets_bad_spec_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsource: {inline: [a]}\nprompts: [hi]\ncolour: red\n")
    assert "unknown key" in _one_line_error(run("check-targets", str(bad)))
    assert "unknown key" in _one_line_error(run("audit", str(bad)))
    assert "cannot read spec" in _one_line_error(run("audit", str(tmp_path / "missing.yaml")))


def test_broken_model_directories_and_non_utf8_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{")
    for cmd in ("audit", "build-adapter"):
        extra = ["--out", str(tmp_path / "a")] if cmd == "build-adapter" else []
        line = _one_line_error(run(cmd, "adapters/gender.yaml", "--model", str(broken), *extra))
        assert f"cannot load model '{broken}': " in line and "config.json" in line
    assert not (tmp_path / "a").exists()
    tpl, spec = tmp_path / "t.yaml", tmp_path / "s.yaml"
    tpl.write_bytes(b'name: x\nfields: [{name: a, kind: text, prompt: "caf\xe9"}]\n')
    spec.write_bytes(b'name: x\nsource: {inline: [a, b]}\nprompts: ["caf\xe9"]\n')
    line = _one_line_error(run("generate", str(tpl), "--n", "1", "--out", str(tmp_path / "x.jsonl")))
    assert line == f"Error: template '{tpl}' is not UTF-8 text (byte 52: b'\\xe9'): save it as UTF-8"
    assert "is not UTF-8 text (byte 48" in _one_line_error(run("check-targets", str(spec)))


def test_new_user_bad_inputs_are_one_line_errors(tmp_path, monkeypatch):
    """Found by a new user (issue #15): each gave a traceback before."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "is not a URL" in _one_line_error(run("sample", "hi", "--engine", "openai", "--endpoint", "notaurl"))
    one = tmp_path / "one.yaml"
    one.write_text("name: one\nsource: {inline: [a]}\nprompts: [hi]\n")
    msg = _one_line_error(run("check-targets", str(one), "--model", "org/name"))
    assert "cannot load the tokenizer of 'org/name'" in msg
    # the list is checked before any model loads (the isolated home has no converted model)
    assert "at least 2 answers" in _one_line_error(run("build-adapter", str(one), "--out", str(tmp_path / "a")))
    assert not (tmp_path / "a").exists()
    data = tmp_path / "d.jsonl"
    data.write_text('{"index": 0, "f": "x"}\n')
    msg = _one_line_error(run("report", str(data), "--list", "f=nosuchlist", "--out", str(tmp_path / "r")))
    assert "nosuchlist" in msg and "first_names" in msg


def test_ctrl_c_in_a_run_says_what_is_kept_and_how_to_resume(tmp_path, monkeypatch):
    import synthgen.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthgen.runner, "prepare", interrupted)
    r = run("biographies", "--n", "2", "--out", str(tmp_path / "o.jsonl"))
    assert r.exit_code == 130
    assert r.output.strip().splitlines()[-1] == ("interrupted: the records written so far are kept; run the same "
                                                 "command with --resume to continue")


def test_a_closed_stdout_pipe_ends_quietly_with_exit_0(tmp_path):
    """`synthgen report X | head -1`: the reader has what it asked for; rich alone would exit 1."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"name": "n{i}", "city": "c{i % 7}"}}\n' for i in range(300)))
    proc = subprocess.Popen([sys.executable, "-m", "synthgen", "report", str(data)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


def test_an_adapter_path_that_is_not_an_adapter_says_what_it_is_and_where_it_looked(tmp_path, monkeypatch):
    from synthgen.errors import InputError
    from synthgen.paths import resolve_adapter

    monkeypatch.chdir(tmp_path)
    (tmp_path / "careers.yaml").write_text("name: careers\n")
    for name, message in [
        ("./careers.yaml", "adapter './careers.yaml' is a list spec, not an adapter: train one with `synthgen "
                           "build-adapter ./careers.yaml --out DIR` and give DIR, or write adapter: auto"),
        ("../nowhere/careers", f"adapter '../nowhere/careers' does not exist (looked for {tmp_path.parent / 'nowhere' / 'careers'}; "
                               f"a relative path starts from the current directory, {tmp_path})")]:
        try:
            resolve_adapter(name, None)
        except InputError as e:
            assert str(e) == message
        else:
            raise AssertionError(name)


def test_a_bad_input_error_comes_before_the_wait_policy_notice(tmp_path, monkeypatch):
    """On a busy machine the engine's threads are told to sleep, and a line says so; a bad input's error is still the
    only line (it used to be the second, under that notice)."""
    from synthgen.engine import threads

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda *a, **k: 2.0)
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # configure() acts only before torch is loaded
    r = run("generate", str(tmp_path / "nope.yaml"), "--n", "2", "--out", str(tmp_path / "o.jsonl"))
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "OMP_WAIT_POLICY" not in r.output
