"""Reference values for the probe metrics (model/tests/probe_metrics.rs).

Per-AU F1 at 0.5 from scikit-learn on random labels (with unknown = -1
entries left out) and random probabilities, including an AU with no positive
label but positive predictions, and one with no positive label and no
positive prediction (F1 undefined: scikit-learn returns 0 with its default
zero_division="warn", the same as zero_division=0). Paired t-tests from
scipy.stats.ttest_rel.

Run: .venv/bin/python model/tests/data/probe/gen_reference.py
"""
import json
import pathlib
import warnings

import numpy as np
import scipy
import sklearn
from scipy.stats import ttest_rel
from sklearn.metrics import average_precision_score, f1_score

rng = np.random.default_rng(20261128)
n, aus = 300, 7
labels = rng.integers(0, 2, size=(n, aus)).astype(np.int8)
labels[rng.random((n, aus)) < 0.2] = -1  # unknown
labels[:, 1] = np.where(rng.random(n) < 0.9, 0, 1)  # rare positives
labels[:, 4] = np.where(labels[:, 4] == 1, 0, labels[:, 4])  # no positives, predictions below
labels[:, 5] = np.where(labels[:, 5] == 1, 0, labels[:, 5])  # no positives, no predictions
probs = rng.random((n, aus)).astype(np.float32)
probs[:, 5] = probs[:, 5] * 0.49  # never >= 0.5
probs[:3, 6] = 0.5  # the threshold itself counts as present
probs[:, 3] = np.round(probs[:, 3], 2)  # tied scores, for average precision

f1 = []
for a in range(aus):
    known = labels[:, a] != -1
    y, p = labels[known, a], (probs[known, a] >= 0.5).astype(np.int8)
    zero = f1_score(y, p, zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = f1_score(y, p)
    assert zero == default, (a, zero, default)
    f1.append(float(zero))
assert f1[4] == 0.0 and f1[5] == 0.0

# Average precision per AU (unknown rows left out).
ap = []
for a in range(aus):
    known = labels[:, a] != -1
    y = labels[known, a]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no positive class in columns 4 and 5
        ap.append(float(average_precision_score(y, probs[known, a])))
assert ap[4] == 0.0 and ap[5] == 0.0

ttests = []
for k in (12, 8, 3):
    a = rng.random(k)
    b = a + rng.normal(0.03, 0.05, k)
    r = ttest_rel(a, b)
    ttests.append({"a": a.tolist(), "b": b.tolist(), "t": float(r.statistic), "p": float(r.pvalue)})

out = {
    "versions": {"sklearn": sklearn.__version__, "scipy": scipy.__version__, "numpy": np.__version__},
    "aus": aus,
    "labels": labels.flatten().tolist(),
    "probs": probs.flatten().tolist(),
    "f1": f1,
    "ap": ap,
    "ttests": ttests,
}
path = pathlib.Path(__file__).with_name("reference.json")
path.write_text(json.dumps(out))
print(f"wrote {path}: f1 {np.round(f1, 4).tolist()}, ap {np.round(ap, 4).tolist()}")
