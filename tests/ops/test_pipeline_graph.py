"""The pipeline graph: edges from paths and datasets, order, selection, and bad pipelines."""

from __future__ import annotations

import pytest

from keel.errors import UserError, ValidationError
from keel.ops.pipeline_graph import StageDecl, build_graph, norm


def S(
    name: str,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    dataset_inputs: tuple[str, ...] = (),
    dataset_outputs: tuple[str, ...] = (),
) -> StageDecl:
    return StageDecl(
        name=name,
        inputs=inputs,
        outputs=outputs,
        dataset_inputs=dataset_inputs,
        dataset_outputs=dataset_outputs,
    )


def test_an_input_equal_to_under_or_containing_an_output_makes_an_edge() -> None:
    graph = build_graph(
        [
            S("report", inputs=("out",), outputs=("report.txt",)),
            S("train", inputs=("data/clean.csv",), outputs=("out/model.txt",)),
            S("prepare", inputs=("data/raw.csv",), outputs=("data/clean.csv",)),
            S("plots", inputs=("out/model.txt/part",), outputs=("plots",)),
        ]
    )
    assert graph.upstream == {
        "report": ("train",),
        "train": ("prepare",),
        "prepare": (),
        "plots": ("train",),
    }
    assert graph.order == ("prepare", "train", "report", "plots")


def test_a_dataset_input_depends_on_the_stage_that_registers_it() -> None:
    graph = build_graph(
        [
            S("use", dataset_inputs=("feats",), outputs=("out/u",)),
            S("make", outputs=("out/feats.csv",), dataset_outputs=("feats",)),
        ]
    )
    assert graph.upstream["use"] == ("make",)
    assert graph.order == ("make", "use")


def test_independent_stages_keep_their_declaration_order() -> None:
    graph = build_graph([S("b", outputs=("b",)), S("a", outputs=("a",)), S("c", inputs=("a",))])
    assert graph.order == ("b", "a", "c")


def test_a_cycle_is_reported_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        build_graph(
            [
                S("a", inputs=("y",), outputs=("x",)),
                S("b", inputs=("x",), outputs=("y",)),
                S("c", inputs=("x",), outputs=("z",)),
            ]
        )
    assert "pipeline cycle: a → b → a" in str(info.value)


def test_two_stages_writing_the_same_output_is_an_error_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"stages 'a' and 'b' both write out/x\.csv"):
        build_graph([S("a", outputs=("out/x.csv",)), S("b", outputs=("./out//x.csv",))])


def test_an_output_inside_another_stages_output_is_an_error_naming_both() -> None:
    with pytest.raises(ValidationError) as info:
        build_graph([S("a", outputs=("out",)), S("b", outputs=("out/x.csv",))])
    assert "output out/x.csv of stage 'b' lies inside output out of stage 'a'" in str(info.value)


def test_two_stages_registering_one_dataset_is_an_error() -> None:
    with pytest.raises(ValidationError, match="both register dataset 'feats'"):
        build_graph(
            [
                S("a", outputs=("a",), dataset_outputs=("feats",)),
                S("b", outputs=("b",), dataset_outputs=("feats",)),
            ]
        )


def test_select_takes_targets_and_everything_upstream_in_order() -> None:
    graph = build_graph(
        [
            S("prepare", outputs=("clean",)),
            S("train", inputs=("clean",), outputs=("model",)),
            S("evaluate", inputs=("model",), outputs=("score",)),
            S("side", outputs=("side",)),
        ]
    )
    assert graph.select(["evaluate"]) == ("prepare", "train", "evaluate")
    assert graph.select([]) == graph.order


def test_an_unknown_target_suggests_the_closest_stage() -> None:
    graph = build_graph([S("train", outputs=("m",))])
    with pytest.raises(UserError, match="unknown stage 'trian'; did you mean 'train'"):
        graph.select(["trian"])


@pytest.mark.parametrize(
    ("given", "normal"),
    [("./a//b/", "a/b"), ("a\\b", "a/b"), ("a/../b", "b")],
    ids=["dots-and-slashes", "backslash", "parent"],
)
def test_paths_are_normalised(given: str, normal: str) -> None:
    assert norm(given) == normal
