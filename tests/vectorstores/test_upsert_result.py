"""Per-document upsert errors are typed (no message matching) and still read well."""

from __future__ import annotations

from aixpy.errors import CapacityError, DimensionMismatchError, InvalidInputError
from aixpy.vectorstores import DocumentError, UpsertResult


def test_document_error_is_typed_and_reads_as_id_colon_message() -> None:
    r = UpsertResult()
    r.add_failure("a", DimensionMismatchError(4, 3))
    r.add_over_limit("b", 10)
    a, b = r.errors
    assert (a.doc_id, a.type, a.message) == ("a", DimensionMismatchError, "embedding has 3 dimensions, expected 4")
    assert isinstance(a.error, InvalidInputError)
    assert (b.doc_id, b.type) == ("b", CapacityError)
    assert [str(e) for e in r.errors] == ["a: embedding has 3 dimensions, expected 4",
                                          "b: max_documents limit of 10 reached; not inserted"]
    shown = "DocumentError(doc_id='b', error=CapacityError('max_documents limit of 10 reached; not inserted'))"
    assert shown in repr(r)
    assert (r.failed, r.failed_ids) == (2, ["a", "b"])


def test_document_errors_compare_by_what_they_say() -> None:
    one = DocumentError("x", CapacityError("full"))
    assert one == DocumentError("x", CapacityError("full"))
    assert hash(one) == hash(DocumentError("x", CapacityError("full")))
    assert one != DocumentError("x", InvalidInputError("full"))
    assert one != DocumentError("y", CapacityError("full"))
    assert one != "x: full"


def test_merge_keeps_typed_errors() -> None:
    left, right = UpsertResult(), UpsertResult()
    right.add_over_limit("z", 1)
    left.merge(right)
    assert left.errors == right.errors
    assert left.errors[0].type is CapacityError
