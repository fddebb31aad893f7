"""Building the DAG by tracing, definition digests, code digests, and the errors raised before anything runs."""

from __future__ import annotations

import pytest

from shipyard.core.errors import InvalidInput
from shipyard.pipelines import DatasetRef, pipeline, step
from shipyard.pipelines.code import code_digest
from shipyard.pipelines.graph import OutputRef, trace
from shipyard.pipelines.runner import resolve_target
from tests.pipelines import sample_pipelines as sp


def test_trace_builds_the_dag_with_edges_outputs_and_values() -> None:
    graph = trace(sp.training, {"rows": 12, "c": 0.5})
    assert list(graph.nodes) == ["make_frame", "split", "train", "evaluate", "stats"]
    assert graph.params == {"rows": 12, "c": 0.5, "register_as": None}
    assert graph.nodes["split"].outputs == ("train", "test")
    assert graph.nodes["train"].inputs["train"] == OutputRef("split", "train")
    assert graph.nodes["train"].inputs["c"] == 0.5
    assert graph.nodes["evaluate"].upstream == ["train", "split"]
    structure = graph.structure()
    assert structure["target"] == "tests.pipelines.sample_pipelines:training"
    train = structure["steps"][2]
    assert train["inputs"]["train"] == {"kind": "output", "step": "split", "output": "train"}
    assert train["inputs"]["c"] == {"kind": "value"}  # values belong to runs, not to the definition
    assert train["code_digest"].startswith("sha256:")
    assert graph.downstream_of("split") == ["train", "evaluate"]


def test_definition_digest_ignores_param_values_but_not_structure() -> None:
    a = trace(sp.training, {"rows": 12})
    b = trace(sp.training, {"rows": 99, "c": 3.0})
    assert a.digest == b.digest
    assert trace(sp.kinds, {}).digest != a.digest


def test_tuple_annotation_and_declared_outputs_name_the_outputs() -> None:
    assert sp.convert.outputs == ("array", "table")
    assert sp.split.outputs == ("train", "test")
    assert sp.make_frame.outputs == ("output",)

    @step
    def pair() -> tuple[int, str]:
        return 1, "a"

    assert pair.outputs == ("output_0", "output_1")
    assert pair() == (1, "a")  # outside a pipeline a step is the plain function


def test_the_same_step_twice_gets_numbered_nodes() -> None:
    graph = trace(sp.parallel, {})
    assert list(graph.nodes) == ["nap", "nap_2"]


def test_code_digest_ignores_formatting_comments_and_decorator_options() -> None:
    def one(x):
        return x + 1

    def two(x):
        # a comment
        return x + 1

    def three(x):
        return x + 2

    assert code_digest(one) == code_digest(two)
    assert code_digest(one) != code_digest(three)
    assert step(one).code_digest == step(retries=3)(one).code_digest


@pytest.mark.parametrize(
    ("target", "params", "fragment"),
    [
        (sp.unknown_output, {}, "step 'split' has no output 'nope' (outputs: train, test)"),
        (sp.missing_input, {}, "step 'stats': missing a required argument: 'frame'"),
        (sp.training, {"rowz": 3}, "pipeline 'training' has no parameter 'rowz'"),
        (sp.training, {"rows": {1, 2}}, "parameter 'rows' is not JSON-serialisable"),
        (sp.training, {"rows": object()}, "parameter 'rows' is not JSON-serialisable"),
    ],
)
def test_bad_pipelines_fail_while_tracing(target, params, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        trace(target, params)
    assert fragment in err.value.message


def test_non_json_step_values_and_nested_outputs_are_refused() -> None:
    @pipeline
    def bad_value():
        sp.stats(object())

    @pipeline
    def nested():
        frame = sp.make_frame(3)
        sp.stats([frame])

    @pipeline
    def all_outputs():
        sp.stats(sp.split(sp.make_frame(3)))

    @pipeline
    def branch_on_output():
        if sp.make_frame(3):
            pass

    with pytest.raises(InvalidInput, match="step 'stats' input 'frame' is not JSON-serialisable"):
        trace(bad_value, {})
    with pytest.raises(InvalidInput, match="nests a step output"):
        trace(nested, {})
    with pytest.raises(InvalidInput, match="got all outputs of step 'split'; pass one of them"):
        trace(all_outputs, {})
    with pytest.raises(InvalidInput, match="not known while the pipeline is built"):
        trace(branch_on_output, {})


def test_targets_resolve_from_import_references() -> None:
    assert resolve_target("tests.pipelines.sample_pipelines:training") is sp.training
    with pytest.raises(InvalidInput, match="cannot import module 'no.such.module'"):
        resolve_target("no.such.module:pipe")
    with pytest.raises(InvalidInput, match="has no attribute 'nothing'"):
        resolve_target("tests.pipelines.sample_pipelines:nothing")
    with pytest.raises(InvalidInput, match="must look like 'package.module:function'"):
        resolve_target("tests.pipelines.sample_pipelines")
    with pytest.raises(InvalidInput, match="is not a @pipeline function"):
        resolve_target("tests.pipelines.sample_pipelines:make_frame")


def test_step_options_and_dataset_refs_are_validated() -> None:
    with pytest.raises(InvalidInput, match="retries must be an integer >= 0"):
        step(retries=-1)
    with pytest.raises(InvalidInput, match="timeout must be > 0"):
        step(timeout=0)
    with pytest.raises(InvalidInput, match="must look like 'NAME@VERSION'"):
        DatasetRef("numbers")
    graph = trace(sp.uses_dataset, {"ref": "numbers@2"})
    assert graph.nodes["read_dataset"].inputs["ref"] == DatasetRef("numbers@2")
    assert graph.structure()["steps"][0]["inputs"]["ref"] == {"kind": "dataset"}
