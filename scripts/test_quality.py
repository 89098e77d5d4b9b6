"""Tests for scripts/quality.py and models/corpus.py (stdlib unittest):
    python3 -m unittest discover -s scripts -p 'test_quality.py'
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quality  # noqa: E402
from quality import corpus  # noqa: E402


def group(cls, source, n, caught, quarantined, verdicts=None):
    return {"class": cls, "source": source, "n": n, "caught": caught, "quarantined": quarantined,
            "verdicts": verdicts or {"pass": n}, "tags": {}}


FLOOR = {
    "classes": {"phish": {"caught": 0.9, "quarantined": 0.8}, "spam": {"caught": 0.85}},
    "ham_max": {"lists": {"caught": 0.01, "quarantined": 0.001}},
}


class Check(unittest.TestCase):
    def result(self, phish_q=0.9, spam_c=0.9, ham_c=0.0):
        return {"groups": [
            group("phish", "*", 10, 0.95, phish_q),
            group("spam", "*", 10, spam_c, 0.1),
            group("ham", "lists", 100, ham_c, 0.0),
        ]}

    def test_figures_at_or_above_their_floor_pass(self):
        self.assertEqual(quality.check(self.result(), FLOOR), [])

    def test_a_class_below_its_floor_fails(self):
        bad = quality.check(self.result(phish_q=0.7, spam_c=0.5), FLOOR)
        self.assertEqual(len(bad), 2, bad)
        self.assertIn("phish quarantined 70.0% < floor 80.0%", bad)

    def test_ham_over_its_maximum_fails(self):
        bad = quality.check(self.result(ham_c=0.02), FLOOR)
        self.assertEqual(bad, ["ham/lists caught 2.0% > max 1.0%"])

    def test_a_missing_source_fails_rather_than_passing_silently(self):
        r = self.result()
        r["groups"] = [g for g in r["groups"] if g["class"] != "ham"]
        self.assertEqual(quality.check(r, FLOOR), ["ham/lists: no messages"])


class Split(unittest.TestCase):
    def test_validation_is_the_documented_hash_rule(self):
        import hashlib

        keys = [f"trec07p_half/data/inmail.{i}" for i in range(1000)]
        for k in keys:
            want = int(hashlib.sha256(k.encode()).hexdigest()[:8], 16) % 5 == 0
            self.assertEqual(corpus.in_validation(k), want)
        share = sum(corpus.in_validation(k) for k in keys) / len(keys)
        self.assertTrue(0.15 < share < 0.25, share)

    def test_sample_by_hash_is_deterministic_and_capped(self):
        msgs = [corpus.Message("ham", "s", f"k{i}", raw=b"") for i in range(50)]
        a = [m.key for m in corpus.by_hash(msgs, 10)]
        b = [m.key for m in corpus.by_hash(list(reversed(msgs)), 10)]
        self.assertEqual(a, b)
        self.assertEqual(len(a), 10)


class Tree(unittest.TestCase):
    def test_train_and_validation_trees_hold_disjoint_keys_of_their_split(self):
        import tempfile
        from unittest import mock

        msgs = [corpus.Message("ham", "s", f"k/{i}", raw=b"x") for i in range(40)]
        with tempfile.TemporaryDirectory() as work, mock.patch.object(corpus, "messages", return_value=msgs):
            val = quality.build_tree(work, 100, "validation")
            train = quality.build_tree(work, 100, "train")
            self.assertNotEqual(val, train)
            names = {t: set(os.listdir(os.path.join(t, "ham", "s"))) for t in (val, train)}
        want_val = {m.key.replace("/", "_") for m in msgs if corpus.in_validation(m.key)}
        self.assertEqual(names[val], want_val)
        self.assertEqual(names[train], {m.key.replace("/", "_") for m in msgs} - want_val)


    def test_written_mail_is_put_in_afresh(self):
        import tempfile

        with tempfile.TemporaryDirectory() as tree, tempfile.TemporaryDirectory() as written:
            for name in ("a.eml", "b.eml", "README.md"):
                open(os.path.join(written, name), "w").close()
            stale = os.path.join(tree, "ham", quality.WRITTEN_SOURCE)
            os.makedirs(stale)
            open(os.path.join(stale, "gone.eml"), "w").close()
            d = quality.add_written(tree, written)
            self.assertEqual(sorted(os.listdir(d)), ["a.eml", "b.eml"])
        self.assertTrue(any(n.endswith(".eml") for n in os.listdir(quality.WRITTEN)), "the committed messages")


class Table(unittest.TestCase):
    def test_any_verdict_name_gets_a_column(self):
        r = {"groups": [group("spam", "*", 4, 0.5, 0.25, {"pass": 2, "junk": 1, "quarantine": 1})]}
        t = quality.table(r)
        self.assertIn("| pass | junk | quarantine |", t.splitlines()[0] + " |")
        self.assertIn("| 25.0% |", t)


if __name__ == "__main__":
    unittest.main()
