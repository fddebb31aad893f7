"""Trees: manifests, modes, symlink rules, atomic materialization with hard links, verification."""

from __future__ import annotations

import json
import os
import stat

import pytest

from shipyard.artifacts import (
    TREE_KIND,
    ArtifactStore,
    load_tree,
    materialize_tree,
    put_path,
    put_tree,
    read_manifest,
    tree_digest_of_directory,
    verify_tree,
)
from shipyard.core.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from shipyard.core.hashing import canonical_json

from .helpers import corrupt, object_files, read_tree, sha, write_tree

FILES = {
    "model.pkl": b"weights" * 100,
    "conf/params.json": b'{"lr": 0.1}',
    "conf/deep/nested/more.txt": b"deep",
    "copy_of_model.pkl": b"weights" * 100,
    "empty.txt": b"",
}


@pytest.fixture
def src(tmp_path) -> str:
    base = str(tmp_path / "src")
    write_tree(base, FILES)
    os.makedirs(os.path.join(base, "empty_dir", "also_empty"))
    run = os.path.join(base, "run.sh")
    with open(run, "wb") as f:
        f.write(b"#!/bin/sh\necho hi\n")
    os.chmod(run, 0o700)
    return base


def test_manifest_contents(store: ArtifactStore, src: str) -> None:
    tree = put_tree(store, src)
    manifest = read_manifest(store, tree.digest)
    assert manifest["kind"] == TREE_KIND
    assert sorted(manifest["entries"]) == sorted([*FILES, "run.sh"])  # empty dirs are not represented
    assert manifest["entries"]["conf/deep/nested/more.txt"] == {
        "digest": sha(b"deep"),
        "size": 4,
        "mode": 0o644,
    }
    # Modes are normalized like git: executable or not, independent of the creator's umask.
    assert manifest["entries"]["run.sh"]["mode"] == 0o755
    # The manifest object is the canonical JSON of the manifest, so its digest is reproducible.
    assert store.read_bytes(tree.digest) == canonical_json(manifest)
    assert tree.file_count == 6
    assert tree.total_size == sum(len(v) for v in FILES.values()) + len(b"#!/bin/sh\necho hi\n")
    assert tree.entries["model.pkl"].digest == sha(FILES["model.pkl"])
    assert load_tree(store, tree.digest) == tree
    assert tree.manifest() == manifest


def test_duplicate_files_are_stored_once(store: ArtifactStore, root: str, src: str) -> None:
    put_tree(store, src)
    distinct_contents = {*FILES.values(), b"#!/bin/sh\necho hi\n"}
    assert len(object_files(root)) == len(distinct_contents) + 1  # plus the manifest
    put_tree(store, src)
    assert len(object_files(root)) == len(distinct_contents) + 1


def test_progress_reports_bytes(store: ArtifactStore, src: str) -> None:
    seen: list[int] = []
    tree = put_tree(store, src, progress=seen.append)
    assert sum(seen) == tree.total_size
    assert len(seen) == tree.file_count


def test_digest_without_storing_matches(store: ArtifactStore, root: str, src: str) -> None:
    expected = tree_digest_of_directory(src)
    assert object_files(root) == []
    assert put_tree(store, src).digest == expected


def test_digest_ignores_timestamps_and_permission_noise(tmp_path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    write_tree(a, FILES)
    write_tree(b, FILES, order=sorted(FILES, reverse=True))
    os.chmod(os.path.join(b, "model.pkl"), 0o600)
    os.utime(os.path.join(b, "empty.txt"), (1, 1))
    assert tree_digest_of_directory(a) == tree_digest_of_directory(b)
    os.chmod(os.path.join(b, "model.pkl"), 0o744)
    assert tree_digest_of_directory(a) != tree_digest_of_directory(b)


def test_materialize_hard_links_from_local_store(store: ArtifactStore, src: str, tmp_path) -> None:
    tree = put_tree(store, src)
    dest = str(tmp_path / "out" / "model")
    materialize_tree(store, tree.digest, dest)

    assert read_tree(dest) == read_tree(src)
    model = os.stat(os.path.join(dest, "model.pkl"))
    obj = os.stat(store.local_path(tree.entries["model.pkl"].digest) or "")
    assert (model.st_ino, model.st_dev) == (obj.st_ino, obj.st_dev)
    assert stat.S_IMODE(model.st_mode) == 0o444  # shares the object's inode, so read-only
    # An executable cannot be a link (chmod would hit the shared object): it is a copy with its mode.
    run = os.stat(os.path.join(dest, "run.sh"))
    assert run.st_nlink == 1
    assert stat.S_IMODE(run.st_mode) == 0o755
    assert verify_tree(store, tree.digest, dest) == []
    assert os.listdir(tmp_path / "out") == ["model"]  # no staging directory left behind


def test_materialize_copy_sets_modes(store: ArtifactStore, src: str, tmp_path) -> None:
    tree = put_tree(store, src)
    dest = str(tmp_path / "copy")
    materialize_tree(store, tree.digest, dest, link=False)
    st = os.stat(os.path.join(dest, "conf", "params.json"))
    assert st.st_nlink == 1
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(dest, "run.sh")).st_mode) == 0o755
    assert tree_digest_of_directory(dest) == tree.digest


def test_materialize_into_existing_directory(store: ArtifactStore, src: str, tmp_path) -> None:
    tree = put_tree(store, src)
    empty = tmp_path / "empty"
    empty.mkdir()
    materialize_tree(store, tree.digest, str(empty))
    assert verify_tree(store, tree.digest, str(empty)) == []

    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_bytes(b"mine")
    with pytest.raises(AlreadyExists):
        materialize_tree(store, tree.digest, str(full))
    assert os.listdir(full) == ["keep.txt"]


@pytest.mark.parametrize("link", [True, False])
def test_materialize_is_all_or_nothing_on_corruption(
    store: ArtifactStore, src: str, tmp_path, link: bool
) -> None:
    tree = put_tree(store, src)
    corrupt(store.local_path(tree.entries["conf/deep/nested/more.txt"].digest) or "", b"DEEP")
    parent = tmp_path / "out"
    parent.mkdir()
    with pytest.raises(IntegrityError):
        materialize_tree(store, tree.digest, str(parent / "model"), link=link)
    assert os.listdir(parent) == []


def test_verify_tree_reports_changed_missing_and_extra(store: ArtifactStore, src: str, tmp_path) -> None:
    tree = put_tree(store, src)
    dest = str(tmp_path / "work")
    materialize_tree(store, tree.digest, dest, link=False)
    assert verify_tree(store, tree.digest, dest) == []

    with open(os.path.join(dest, "conf", "params.json"), "wb") as f:
        f.write(b'{"lr": 0.2}')  # same size, different content
    with open(os.path.join(dest, "empty.txt"), "wb") as f:
        f.write(b"no longer empty")
    os.remove(os.path.join(dest, "model.pkl"))
    with open(os.path.join(dest, "conf", "extra.txt"), "wb") as f:
        f.write(b"new")
    os.symlink(str(tmp_path), os.path.join(dest, "escape"))
    assert verify_tree(store, tree.digest, dest) == [
        "conf/extra.txt",
        "conf/params.json",
        "empty.txt",
        "escape",
        "model.pkl",
    ]
    with pytest.raises(NotFound):
        verify_tree(store, tree.digest, str(tmp_path / "nowhere"))


def test_symlinks_inside_the_tree_are_followed(store: ArtifactStore, tmp_path) -> None:
    base = tmp_path / "src"
    write_tree(str(base), {"data/a.txt": b"A", "b.txt": b"B"})
    os.symlink("data/a.txt", base / "link_to_a")
    os.symlink("data", base / "link_to_data")
    tree = put_tree(store, str(base))
    assert sorted(tree.entries) == ["b.txt", "data/a.txt", "link_to_a", "link_to_data/a.txt"]
    assert tree.entries["link_to_a"].digest == sha(b"A")


@pytest.mark.parametrize("kind", ["file_outside", "dir_outside", "absolute", "dangling", "cycle"])
def test_bad_symlinks_are_refused(store: ArtifactStore, root: str, tmp_path, kind: str) -> None:
    base = tmp_path / "src"
    write_tree(str(base), {"sub/ok.txt": b"ok"})
    (tmp_path / "secret.txt").write_bytes(b"secret")
    link = base / "sub" / "link"
    target = {
        "file_outside": "../../secret.txt",
        "dir_outside": "../..",
        "absolute": "/etc",
        "dangling": "missing.txt",
        "cycle": "..",
    }[kind]
    os.symlink(target, link)
    with pytest.raises(InvalidInput) as err:
        put_tree(store, str(base))
    assert "sub/link" in err.value.message
    with pytest.raises(InvalidInput):
        tree_digest_of_directory(str(base))
    assert object_files(root) == []


def test_put_path(store: ArtifactStore, src: str, tmp_path) -> None:
    digest, size, is_tree = put_path(store, os.path.join(src, "model.pkl"))
    assert (digest, size, is_tree) == (sha(FILES["model.pkl"]), len(FILES["model.pkl"]), False)
    digest, size, is_tree = put_path(store, src)
    assert is_tree and digest == tree_digest_of_directory(src)
    assert size == load_tree(store, digest).total_size
    with pytest.raises(NotFound):
        put_path(store, str(tmp_path / "missing"))


def test_empty_directory_is_an_empty_tree(store: ArtifactStore, tmp_path) -> None:
    (tmp_path / "e" / "sub").mkdir(parents=True)
    tree = put_tree(store, str(tmp_path / "e"))
    assert tree.file_count == 0 and tree.entries == {}
    materialize_tree(store, tree.digest, str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == []


def test_read_manifest_rejects_non_manifests(store: ArtifactStore) -> None:
    blob, _ = store.put_bytes(b"just bytes \xff")
    json_blob, _ = store.put_bytes(b'{"kind": "something/else", "entries": {}}')
    for digest in (blob, json_blob):
        with pytest.raises(InvalidInput):
            read_manifest(store, digest)


@pytest.mark.parametrize(
    "entries",
    [
        {"../evil": {"digest": sha(b"x"), "size": 1, "mode": 0o644}},
        {"/etc/evil": {"digest": sha(b"x"), "size": 1, "mode": 0o644}},
        {"a//b": {"digest": sha(b"x"), "size": 1, "mode": 0o644}},
        {"a/./b": {"digest": sha(b"x"), "size": 1, "mode": 0o644}},
        {
            "a": {"digest": sha(b"x"), "size": 1, "mode": 0o644},
            "a/b": {"digest": sha(b"x"), "size": 1, "mode": 0o644},
        },
        {"a": {"digest": "md5:abc", "size": 1, "mode": 0o644}},
        {"a": {"digest": sha(b"x"), "size": -1, "mode": 0o644}},
        {"a": {"digest": sha(b"x"), "size": 1, "mode": 0o4755}},
    ],
)
def test_hostile_manifests_are_rejected(store: ArtifactStore, tmp_path, entries: dict) -> None:
    store.put_bytes(b"x")
    (tmp_path / "sandbox").mkdir()
    digest, _ = store.put_bytes(json.dumps({"kind": TREE_KIND, "entries": entries}).encode())
    with pytest.raises(InvalidInput):
        read_manifest(store, digest)
    with pytest.raises(InvalidInput):
        materialize_tree(store, digest, str(tmp_path / "sandbox" / "out"))
    assert not (tmp_path / "evil").exists()
    assert os.listdir(tmp_path / "sandbox") == []


def test_corrupt_manifest_is_an_integrity_error(store: ArtifactStore, src: str) -> None:
    tree = put_tree(store, src)
    corrupt(store.local_path(tree.digest) or "", b'{"kind": "shipyard.tree/v1", "entries": {}}')
    with pytest.raises(IntegrityError):
        read_manifest(store, tree.digest)


def test_tree_over_generic_fsspec_store(memory_root: str, src: str, tmp_path) -> None:
    store = ArtifactStore(memory_root)
    tree = put_tree(store, src)
    assert tree.digest == tree_digest_of_directory(src)
    dest = str(tmp_path / "out")
    materialize_tree(store, tree.digest, dest)  # link requested, but nothing local to link
    assert os.stat(os.path.join(dest, "model.pkl")).st_nlink == 1
    assert verify_tree(store, tree.digest, dest) == []


def test_longest_file_names_survive(store: ArtifactStore, tmp_path) -> None:
    name = "n" * 255  # NAME_MAX: temp names beside it must not grow past the limit
    files = {name: b"long", f"d/{name}": b"longer"}
    write_tree(str(tmp_path / "src"), files)
    tree = put_tree(store, str(tmp_path / "src"))
    materialize_tree(store, tree.digest, str(tmp_path / ("o" * 255)), link=False)
    assert read_tree(str(tmp_path / ("o" * 255))) == files
