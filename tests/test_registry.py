"""Registry: in-process plugins, queries, lookup errors, isolation of broken plugins."""

import types

import pytest
from pydantic import ConfigDict
from segmentkit import ModelCard, ModelOptions, ModelSpec, Segmenter, hookimpl
from segmentkit.errors import (
    DuplicateModelError,
    MissingDependencyError,
    OptionsError,
    PluginLoadError,
    SpecError,
    UnknownModelError,
)
from segmentkit.registry import Registry


class EchoModel:
    """A loader class for tests: remembers what it was built with."""

    def __init__(self, card, options):
        self.card, self.options = card, options


def card(model_id="toy-a", roles=("segmenter",), **kw):
    base = dict(id=model_id, family="toy", roles=roles, tasks=("semantic",), license="MIT")
    if "prompter" in roles:
        base["prompt_kinds"] = ("point",)
    base.update(kw)
    return ModelCard(**base)


class ToyOptions(ModelOptions):
    threshold: float = 0.5


def plugin(*specs_by_hook, name="toy"):
    """A plugin namespace answering the given hooks with the given spec lists."""
    ns = types.SimpleNamespace(__name__=name)
    for hook, specs in specs_by_hook:
        def impl(specs=specs):
            if isinstance(specs, Exception):
                raise specs
            return specs
        impl.__name__ = hook
        setattr(ns, hook, hookimpl(impl))
    return ns


LOADER = f"{__name__}:EchoModel"


@pytest.fixture
def registry():
    return Registry(entry_points=False)


def test_register_query_and_load(registry):
    seg = ModelSpec(card=card(roles=("segmenter", "prompter")), role="segmenter", loader=LOADER, options=ToyOptions)
    pro = ModelSpec(card=card(roles=("segmenter", "prompter")), role="prompter", loader=LOADER)
    registry.register(plugin(("segmentkit_segmenters", [seg]), ("segmentkit_prompters", [pro])))
    infos = registry.models()
    assert [i.card.id for i in infos] == ["toy-a"]
    assert infos[0].roles == ("prompter", "segmenter") and infos[0].distribution == "<in-process>"
    assert registry.models(role="tracker") == []
    assert [i.card.id for i in registry.models(prompt_kind="point")] == ["toy-a"]
    model = registry.load("toy-a", role="segmenter", threshold=0.8)
    assert isinstance(model, Segmenter) and model.card.id == "toy-a"  # the core handle
    assert isinstance(model.raw, EchoModel) and model.options.threshold == 0.8  # around the plugin's object
    assert registry.resolve("toy-a").spec.role == "prompter"  # prompter is preferred without a role


def test_aliases_and_default_model(registry, monkeypatch):
    spec = ModelSpec(card=card("classic", aliases=("grabcut",)), role="segmenter", loader=LOADER)
    registry.register(plugin(("segmentkit_segmenters", [spec])))
    assert registry.load("grabcut").card.id == "classic"
    assert registry.load(None).card.id == "classic"
    monkeypatch.setenv("SEGMENTKIT_DEFAULT_MODEL", "nope")
    assert registry.load(None).card.id == "classic"  # the only segmenter


def test_unknown_model_suggests_close_ids(registry):
    spec = ModelSpec(card=card("sam2.1-hiera-tiny"), role="segmenter", loader=LOADER)
    registry.register(plugin(("segmentkit_segmenters", [spec])))
    with pytest.raises(UnknownModelError, match="did you mean 'sam2.1-hiera-tiny'"):
        registry.load("sam2.1-hiera-tin")
    with pytest.raises(UnknownModelError, match="role 'tracker'"):
        registry.load("sam2.1-hiera-tiny", role="tracker")


def test_no_default_model_is_a_clear_error(registry):
    with pytest.raises(UnknownModelError, match="no default prompter model"):
        registry.load(None, role="prompter")


def test_unknown_and_invalid_options(registry):
    registry.register(plugin(("segmentkit_segmenters",
                              [ModelSpec(card=card(), role="segmenter", loader=LOADER, options=ToyOptions)])))
    with pytest.raises(OptionsError, match="colour"):
        registry.load("toy-a", colour="red")
    with pytest.raises(OptionsError, match="threshold"):
        registry.load("toy-a", threshold="high")
    with pytest.raises(OptionsError, match="runs on torch, not 'onnxruntime'"):
        registry.load("toy-a", runtime="onnxruntime")


def test_duplicate_id_quarantines_only_the_clashing_specs(registry):
    clash = card("toy-a", roles=("segmenter", "prompter"))
    registry.register(plugin(("segmentkit_segmenters",
                              [ModelSpec(card=clash, role="segmenter", loader=LOADER),
                               ModelSpec(card=card("first-only"), role="segmenter", loader=LOADER)]),
                             ("segmentkit_prompters", [ModelSpec(card=clash, role="prompter", loader=LOADER)]),
                             name="first"))
    registry.register(plugin(("segmentkit_segmenters",
                              [ModelSpec(card=card("toy-a"), role="segmenter", loader=LOADER),
                               ModelSpec(card=card("second-only"), role="segmenter", loader=LOADER)]),
                             name="second"))
    assert [(i.card.id, i.plugin) for i in registry.models()] == [("first-only", "first"), ("second-only", "second")]
    assert registry.load("first-only").card.id == "first-only" and registry.load("second-only").card.id == "second-only"
    for role in (None, "segmenter", "prompter"):
        with pytest.raises(DuplicateModelError, match=r"toy-a.*registered by both .*'first'.* and .*'second'"):
            registry.load("toy-a", role=role)
    problems = [(p.plugin, p.stage, p.models) for p in registry.problems]
    assert problems == [("first", "duplicate-id", ("toy-a",)), ("second", "duplicate-id", ("toy-a",))]
    assert DuplicateModelError.__name__ in registry.problems[0].error


def test_alias_collision_is_an_error(registry):
    registry.register(plugin(("segmentkit_segmenters", [
        ModelSpec(card=card("alpha", aliases=("shared",)), role="segmenter", loader=LOADER),
        ModelSpec(card=card("gamma", aliases=("delta",)), role="segmenter", loader=LOADER),
        ModelSpec(card=card("kept", aliases=("k",)), role="segmenter", loader=LOADER),
    ])), name="one")
    registry.register(plugin(("segmentkit_segmenters", [
        ModelSpec(card=card("beta", aliases=("shared",)), role="segmenter", loader=LOADER),
        ModelSpec(card=card("delta"), role="segmenter", loader=LOADER),  # an id that is gamma's alias
    ])), name="two")
    assert [i.card.id for i in registry.models()] == ["kept"]
    assert registry.load("k").card.id == "kept"
    for name in ("shared", "alpha", "beta", "gamma", "delta"):
        with pytest.raises(DuplicateModelError, match="name '(shared|delta)' is"):
            registry.load(name)
    problems = {(p.plugin, p.stage, p.models) for p in registry.problems}
    assert problems == {("one", "alias", ("alpha", "beta")), ("two", "alias", ("alpha", "beta")),
                        ("one", "alias", ("delta", "gamma")), ("two", "alias", ("delta", "gamma"))}


def test_card_roles_must_match_the_hooks_that_return_them(registry):
    two_roles = card("liar", roles=("segmenter", "prompter"))  # but only the segmenter hook returns it
    registry.register(plugin(("segmentkit_segmenters",
                              [ModelSpec(card=two_roles, role="segmenter", loader=LOADER),
                               ModelSpec(card=card("honest"), role="segmenter", loader=LOADER)])))
    assert [i.card.id for i in registry.models()] == ["honest"]
    with pytest.raises(SpecError, match="card lists roles prompter, segmenter but .* hooks return it as segmenter"):
        registry.load("liar")
    assert [(p.stage, p.models) for p in registry.problems] == [("card-roles", ("liar",))]


def test_trace_goes_through_pluggy(monkeypatch, capsys):
    monkeypatch.setenv("SEGMENTKIT_TRACE", "1")
    registry = Registry(entry_points=False)
    registry.register(plugin(("segmentkit_segmenters", [ModelSpec(card=card(), role="segmenter", loader=LOADER)])))
    assert [i.card.id for i in registry.models()] == ["toy-a"]
    trace = capsys.readouterr().err
    assert "segmentkit trace:" in trace and "segmentkit_segmenters" in trace
    assert "finish segmentkit_segmenters -->" in trace and "toy-a" in trace  # pluggy's after-call record


def test_raising_hook_is_isolated(registry):
    good = ModelSpec(card=card("good"), role="segmenter", loader=LOADER)
    registry.register(plugin(("segmentkit_segmenters", [good]), name="good"))
    bad_spec = ModelSpec(card=card("half", roles=("segmenter", "prompter")), role="segmenter", loader=LOADER)
    registry.register(plugin(("segmentkit_segmenters", [bad_spec]),
                             ("segmentkit_prompters", RuntimeError("boom")), name="bad"))
    assert [i.card.id for i in registry.models()] == ["good"]  # the broken plugin is dropped whole
    assert [(p.plugin, p.stage) for p in registry.problems] == [("bad", "segmentkit_prompters")]
    assert "RuntimeError: boom" in registry.problems[0].error


def test_wrong_return_types_are_spec_errors(registry):
    registry.register(plugin(("segmentkit_segmenters", ["not a spec"]), name="junk"))
    misrouted = ModelSpec(card=card("x", roles=("segmenter",)), role="segmenter", loader=LOADER)
    registry.register(plugin(("segmentkit_prompters", [misrouted]), name="misrouted"))
    assert registry.models() == []
    errors = {p.plugin: p.error for p in registry.problems}
    assert SpecError.__name__ in errors["junk"] and "came from the prompter hook" in errors["misrouted"]


def test_unknown_hook_name_is_refused(registry):
    ns = types.SimpleNamespace(__name__="typo")
    ns.segmentkit_segmentrs = hookimpl(lambda: [])  # noqa: PIE807 - pluggy marks the function; a builtin type refuses it
    with pytest.raises(PluginLoadError, match="segmentkit_segmentrs"):
        registry.register(ns)
    assert registry.problems[0].stage == "register"


def test_loader_import_failures_say_whose_fault(registry):
    specs = [
        ModelSpec(card=card("missing-dep"), role="segmenter", loader="not_installed_pkg_xyz.mod:Model"),
        ModelSpec(card=card("no-attr"), role="segmenter", loader=f"{__name__}:Nope"),
        ModelSpec(card=card("typo"), role="segmenter", loader="segmentkit.modle:Model"),  # installed package
    ]
    registry.register(plugin(("segmentkit_segmenters", specs)))
    with pytest.raises(MissingDependencyError, match="pip install not_installed_pkg_xyz"):
        registry.load("missing-dep")
    with pytest.raises(PluginLoadError, match=r"no-attr.*from <in-process> \(plugin 'toy'\).*no attribute 'Nope'"):
        registry.load("no-attr")
    with pytest.raises(PluginLoadError, match="no module named 'segmentkit.modle'") as typo:
        registry.load("typo")
    assert "pip install" not in str(typo.value) and typo.value.distribution == "<in-process>"


class NoSegment(EchoModel):
    """A segmenter loader that forgot its one method."""


class Segments(EchoModel):
    def segment(self, image, *, task=None):
        raise AssertionError("check() must not run the model")


class OpenOptions(ModelOptions):
    model_config = ConfigDict(extra="allow")


class BadDefault(ModelOptions):
    threshold: float = "high"


def test_check_imports_every_loader_and_validates_options(registry):
    sound = f"{__name__}:Segments"
    ok = ModelSpec(card=card("ok"), role="segmenter", loader=sound, options=ToyOptions)
    bad = {
        "missing-class": ModelSpec(card=card("missing-class"), role="segmenter", loader=f"{__name__}:Nope"),
        "no-method": ModelSpec(card=card("no-method"), role="segmenter", loader=f"{__name__}:NoSegment"),
        "open-options": ModelSpec(card=card("open-options"), role="segmenter", loader=sound, options=OpenOptions),
        "bad-default": ModelSpec(card=card("bad-default"), role="segmenter", loader=sound, options=BadDefault),
    }
    registry.register(plugin(("segmentkit_segmenters", [ok, *bad.values()])))
    assert registry.problems == []  # nothing is imported until check()
    found = {p.models: p for p in registry.check()}
    assert set(found) == {(m,) for m in bad} and {p.stage for p in found.values()} == {"loader"}
    assert "no attribute 'Nope'" in found[("missing-class",)].error
    assert "lacks segment of a segmenter" in found[("no-method",)].error
    assert "extra='forbid'" in found[("open-options",)].error
    assert "BadDefault is invalid" in found[("bad-default",)].error and "threshold" in found[("bad-default",)].error


def test_verify_says_what_it_checked(registry):
    sound = f"{__name__}:Segments"
    registry.register(plugin(("segmentkit_segmenters", [ModelSpec(card=card("ok-a"), role="segmenter", loader=sound),
                                                        ModelSpec(card=card("ok-b"), role="segmenter", loader=sound)])))
    report = registry.verify()
    assert (report.plugins, report.models, report.loaders, report.problems) == (1, 2, 2, [])
    assert report.summary.startswith("checked 1 plugin(s), 2 model(s): all 2 loaders import")
    registry.register(plugin(("segmentkit_segmenters", [ModelSpec(card=card("gone"), role="segmenter",
                                                                  loader=f"{__name__}:Nope")]), name="other"))
    report = registry.verify()
    assert [p.models for p in report.problems] == [("gone",)] and report.summary == "1 plugin problem(s) found"


def test_a_hook_building_a_spec_its_card_refuses_is_one_line(registry):
    with pytest.raises(ValueError) as refused:  # what a hook raises when its card lacks the role (pydantic's error)
        ModelSpec(card=card("half"), role="tracker", loader=LOADER)
    assert "For further information" in str(refused.value)  # pydantic's multi-line report
    registry.register(plugin(("segmentkit_trackers", refused.value)))
    [problem] = registry.problems
    assert problem.stage == "segmentkit_trackers"
    assert problem.error == ("invalid ModelSpec: spec role 'tracker' is not in card.roles ('segmenter',) of model "
                             "'half': a card must list every role a hook returns it for")


def test_card_and_spec_validation():
    with pytest.raises(ValueError, match="lower-kebab"):
        card("Bad_ID")
    with pytest.raises(ValueError, match="prompt_kinds"):
        ModelCard(id="p", family="f", roles=("prompter",), tasks=("prompt",), license="MIT")
    with pytest.raises(ValueError, match="not in card.roles"):
        ModelSpec(card=card(), role="tracker", loader=LOADER)
    with pytest.raises(ValueError, match="package.module:Class"):
        ModelSpec(card=card(), role="segmenter", loader="nocolon")


def test_allow_list_env(monkeypatch):
    monkeypatch.setenv("SEGMENTKIT_LOAD_PLUGINS", "only-this")
    reg = Registry()
    assert all(name == "only-this" for name, *_ in reg.plugins())
