"""Property tests: digests are plain SHA-256, and any small tree survives a store round trip
with a digest that does not depend on the order its files were created in."""

from __future__ import annotations

import hashlib
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.artifacts import ArtifactStore, materialize_tree, put_tree, tree_digest_of_directory

from .helpers import read_tree, write_tree

# No example database: these tests must not drop a .hypothesis/ directory into the repo.
PROPERTY = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

segment = st.text(alphabet="abcxyzABC019_-. ", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))
rel_path = st.lists(segment, min_size=1, max_size=3).map("/".join)


def _no_file_dir_clash(files: dict[str, bytes]) -> bool:
    dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
    return not dirs.intersection(files)


trees = st.dictionaries(rel_path, st.binary(max_size=200), max_size=8).filter(_no_file_dir_clash)


@PROPERTY
@given(data=st.binary(max_size=4096))
def test_digest_is_sha256_and_round_trips(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = ArtifactStore(root)
        digest, size = store.put_bytes(data)
        assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert size == len(data)
        assert store.read_bytes(digest) == data
        out = os.path.join(root, "out.bin")
        store.get_file(digest, out)
        with open(out, "rb") as f:
            assert f.read() == data


@PROPERTY
@given(files=trees, rnd=st.randoms(use_true_random=False))
def test_tree_round_trip_and_order_independence(files: dict[str, bytes], rnd) -> None:
    with tempfile.TemporaryDirectory() as work:
        a, b = os.path.join(work, "a"), os.path.join(work, "b")
        os.makedirs(a)
        os.makedirs(b)
        write_tree(a, files, order=sorted(files))
        shuffled = list(files)
        rnd.shuffle(shuffled)
        write_tree(b, files, order=shuffled)

        store = ArtifactStore(os.path.join(work, "store"))
        tree = put_tree(store, a)
        assert tree_digest_of_directory(b) == tree.digest
        assert put_tree(store, b).digest == tree.digest

        out = os.path.join(work, "out")
        materialize_tree(store, tree.digest, out)
        assert read_tree(out) == files
