"""Erasure of a data subject: find every stored row whose column KEY equals VALUE, and remove it.

A subject is a set of ``KEY=VALUE`` pairs; a row is the subject's when every pair matches (values
compared as text, so ``--subject user_id=42`` matches the integer 42, the float 42.0 and the string
"42"). An erasure touches:

* the prediction log (served and batch-logged segments): each Parquet segment holding the subject
  is rewritten without its rows (a new blob; the segment row switches to it), or dropped when
  nothing is left;
* feedback, labels and routed-prediction rows of the removed prediction ids (and request ids);
* datasets: when the latest version holds the subject, a new version without those rows (parent:
  the latest) is written through the dataset service, so its profile and lineage are right. Every
  version that held the subject has the files holding it **deleted** (rewriting them would change
  the version's identity, its tree digest), its profile cleared (top values, min and max could
  reveal the subject) and the tags ``shipyard.erased_by`` / ``shipyard.erased_successor``, so
  reading it says which erasure purged it and which version to read instead;
* model versions trained on a version that held the subject (``data_refs``, ``data_usages``,
  their source runs' inputs) are tagged ``shipyard.erasure`` and listed, and a stored input example
  holding the subject loses those rows (the model tree keeps its copy: the version is flagged);
* validation reports: the subject's failing rows, kept verbatim, are removed;
* monitors: rows of the subject in a stored reference sample (a Parquet blob of raw rows) are
  removed, windows segmented by the subject's own value (``KEY=VALUE``) deleted.

Crash safety: new blobs (and the new dataset versions, each consistent on its own) are written
first, every reference switches in one transaction (with the erasure record, status ``purging`` and
the blobs to delete), and old blobs are deleted last — each only when nothing references it any
more. A crash before the switch leaves every existing reference as it was (plus unreferenced new
blobs); after it, the next erasure or retention run finishes the pending deletions.

The erased value is never stored, journaled or logged: the record keeps the keys and counts.

The work is split by job: :mod:`.subject` (what a subject is and which rows are theirs),
:mod:`.storage` (reading and writing stored Parquet, CSV and JSON files, deleting blobs and the rows
that hang off prediction ids), :mod:`.plan` (what an erasure would remove, read-only),
:mod:`.execute` (carrying it out: new blobs and versions, the one-transaction switch, the purge) and
:mod:`.summary` (what the record and the journal keep).
"""

from shipyard.governance.erasure.execute import Eraser, finish_purge, new_erasure_id, pending_erasures
from shipyard.governance.erasure.plan import INPUT_PREFIX, Plan, Planner
from shipyard.governance.erasure.storage import (
    CHUNK,
    SEGMENT_ROW_GROUP,
    compact_sqlite,
    count_by_prediction_ids,
    data_file_bytes,
    delete_blob,
    delete_by_prediction_ids,
    parquet_columns,
    purge,
    read_data_file,
    read_parquet,
    referenced,
    secure_delete,
    segment_bytes,
)
from shipyard.governance.erasure.subject import column_mask, parse_subject, table_mask, text_matches, value_matches
from shipyard.governance.erasure.summary import erasure_of, journal_summary

__all__ = [
    "CHUNK",
    "INPUT_PREFIX",
    "SEGMENT_ROW_GROUP",
    "Eraser",
    "Plan",
    "Planner",
    "column_mask",
    "compact_sqlite",
    "count_by_prediction_ids",
    "data_file_bytes",
    "delete_blob",
    "delete_by_prediction_ids",
    "erasure_of",
    "finish_purge",
    "journal_summary",
    "new_erasure_id",
    "parquet_columns",
    "parse_subject",
    "pending_erasures",
    "purge",
    "read_data_file",
    "read_parquet",
    "referenced",
    "secure_delete",
    "segment_bytes",
    "table_mask",
    "text_matches",
    "value_matches",
]
