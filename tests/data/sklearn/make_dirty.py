#!/usr/bin/env python3
"""Writes breast_cancer_dirty.csv: breast_cancer.csv with a header row, text labels and known dirt.

Run from anywhere:  python3 tests/data/sklearn/make_dirty.py
Standard library only and deterministic (no randomness): the output is committed next to this
script, and the tests of ctnn/data/clean.hpp check their counts against the dirt listed here.

Output: line 1 is the header (the 30 feature names, then "diagnosis"); lines 2-580 are the 569
samples of breast_cancer.csv in their order, with 10 exact copies of earlier rows inserted
(579 data rows). Feature cells are the original text unchanged; the label becomes "malignant"
(0) or "benign" (1). "Sample s" below is the 0-based sample of breast_cancer.csv (its line s + 2).

Dirt (17 unreadable cells in 15 rows, 10 duplicates, 2 outliers):
  empty cells (12)
    sample   3 (line   5): mean radius, mean texture
    sample  41 (line  44): mean area
    sample  77 (line  81): mean smoothness
    sample 120 (line 125): worst radius, worst area
    sample 200 (line 206): mean radius
    sample 256 (line 263): texture error
    sample 310 (line 318): mean area
    sample 388 (line 396): worst smoothness
    sample 455 (line 464): mean radius
    sample 530 (line 541): diagnosis
  "NA" cells (3)
    sample 150 (line 155): mean area
    sample 299 (line 307): worst concavity
    sample 501 (line 511): mean texture
  non-numeric typos (2)
    sample  64 (line  68): mean perimeter "n/a?"
    sample 333 (line 341): mean radius "12..5"
  so, per column: mean radius 4, mean texture 2, mean perimeter 1, mean area 3,
  mean smoothness 1, texture error 1, worst radius 1, worst area 1, worst smoothness 1,
  worst concavity 1 (16 numeric cells in 14 rows) and diagnosis 1 (sample 530).
  exact duplicates (10): a copy of sample a inserted right after sample b, (a, b) =
    (5, 10) (17, 60) (90, 91) (133, 180) (222, 290) (250, 251) (345, 400) (360, 470)
    (410, 520) (560, 568); the copies are on lines 13, 64, 96, 186, 298, 258, 409, 480, 531,
    580 and none of the copied samples carries other dirt. breast_cancer.csv itself has no
    duplicate rows, so dropping duplicates (keeping the first) restores its 569 samples.
  gross outliers (2)
    sample 100 (line 105): mean area 250000 (was 582.7)
    sample 420 (line 429): mean radius -11.57 (was 11.57, a lost sign)
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
        "concave points", "symmetry", "fractal dimension"]
NAMES = (["mean " + b for b in BASE] + [b + " error" for b in BASE] +
         ["worst " + b for b in BASE] + ["diagnosis"])
LABELS = ["malignant", "benign"]

# (sample, its line in the output, column name, text written instead of the value); the lines
# are checked below so that the list above cannot drift from the file.
CELLS = [
    (3, 5, "mean radius", ""), (3, 5, "mean texture", ""), (41, 44, "mean area", ""),
    (77, 81, "mean smoothness", ""), (120, 125, "worst radius", ""),
    (120, 125, "worst area", ""), (200, 206, "mean radius", ""),
    (256, 263, "texture error", ""), (310, 318, "mean area", ""),
    (388, 396, "worst smoothness", ""), (455, 464, "mean radius", ""),
    (530, 541, "diagnosis", ""),
    (150, 155, "mean area", "NA"), (299, 307, "worst concavity", "NA"),
    (501, 511, "mean texture", "NA"),
    (64, 68, "mean perimeter", "n/a?"), (333, 341, "mean radius", "12..5"),
    (100, 105, "mean area", "250000"), (420, 429, "mean radius", "-11.57"),
]
ORIGINAL = {(100, "mean area"): "582.7", (420, "mean radius"): "11.57"}
# (copied sample, the sample it is inserted after, the copy's line in the output)
DUPLICATES = [(5, 10, 13), (17, 60, 64), (90, 91, 96), (133, 180, 186), (222, 290, 298),
              (250, 251, 258), (345, 400, 409), (360, 470, 480), (410, 520, 531),
              (560, 568, 580)]


def main():
    with open(os.path.join(HERE, "breast_cancer.csv")) as f:
        lines = f.read().splitlines()
    n, d = (int(v) for v in lines[0].split(",")[:2])
    assert (n, d) == (569, 30) and len(NAMES) == d + 1
    rows = []
    for line in lines[1:]:
        cells = line.split(",")
        cells[-1] = LABELS[int(cells[-1])]
        rows.append(cells)
    assert len(rows) == n and len({tuple(r) for r in rows}) == n

    for (s, name), text in ORIGINAL.items():
        assert rows[s][NAMES.index(name)] == text
    for s, _, name, text in CELLS:
        rows[s][NAMES.index(name)] = text

    dirty = {s for s, _, _, _ in CELLS}
    after = {}
    for copied, b, _ in DUPLICATES:
        assert copied < b and copied not in dirty
        after.setdefault(b, []).append(copied)
    out = [",".join(NAMES)]
    line_of = {}  # sample -> its line in the output (the header is line 1)
    copy_lines = []
    for s, row in enumerate(rows):
        out.append(",".join(row))
        line_of[s] = len(out)
        for copied in after.get(s, []):
            out.append(",".join(rows[copied]))
            copy_lines.append(len(out))
    assert all(line_of[s] == line for s, line, _, _ in CELLS)
    assert copy_lines == sorted(line for _, _, line in DUPLICATES)
    with open(os.path.join(HERE, "breast_cancer_dirty.csv"), "w", newline="\n") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
