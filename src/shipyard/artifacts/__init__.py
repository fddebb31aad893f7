"""Artifact storage: an immutable, content-addressed blob store plus directory trees on top.

Layout under a store root (a local path or any fsspec URL such as ``s3://bucket/prefix``)::

    <root>/objects/ab/cdef...   one file per object; the name is its SHA-256 hex digest,
                                split after two characters to keep directories small
    <root>/tmp/                 in-progress writes; renamed into objects/ only when complete

Objects are identified as ``sha256:<hex>``; equal content is stored once. A directory is
stored as a *tree*: every file becomes an object and a canonical JSON manifest
(``{"kind": "shipyard.tree/v1", "entries": {path: {digest, size, mode}}}``) is stored as one
more object whose digest names the directory.

``store`` holds ArtifactStore; ``trees`` the manifest functions, which accept any object with
ArtifactStore's method names (the local store or a remote HTTP client).
"""

from shipyard.artifacts.store import ArtifactStore
from shipyard.artifacts.trees import (
    TREE_KIND,
    Tree,
    TreeEntry,
    load_tree,
    materialize_tree,
    put_manifest,
    put_path,
    put_tree,
    read_manifest,
    tree_digest_of_directory,
    verify_tree,
)

__all__ = [
    "TREE_KIND",
    "ArtifactStore",
    "Tree",
    "TreeEntry",
    "load_tree",
    "materialize_tree",
    "put_path",
    "put_manifest",
    "put_tree",
    "read_manifest",
    "tree_digest_of_directory",
    "verify_tree",
]
