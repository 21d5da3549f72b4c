"""Model cards and specs: what a plugin tells the core about each model it offers.

A plugin's hook returns :class:`ModelSpec` objects: a :class:`ModelCard` (what the model
is), the role the spec fills, a ``"package.module:Class"`` loader string imported only
when the model is loaded, and the pydantic class of its per-model options.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["segmenter", "prompter", "tracker", "grounder"]
Task = Literal["semantic", "instance", "panoptic", "automatic", "prompt", "track", "ground"]
PromptKindName = Literal["point", "box", "mask", "text"]
Runtime = Literal["torch", "onnxruntime", "numpy"]
Precision = Literal["fp32", "bf16", "int8"]
PrecisionChoice = Literal["auto", "fp32", "bf16", "int8"]  # "auto": resolved per device at load

ROLES: tuple[str, ...] = ("prompter", "segmenter", "tracker", "grounder")
_ID = re.compile(r"^[a-z0-9]+(?:[.\-][a-z0-9]+)*$")
_LOADER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WeightsSource(_Frozen):
    """Where a model's weights come from: a hub repo at a pinned revision."""

    repo_id: str = Field(description="Hugging Face hub repository, e.g. 'facebook/sam2.1-hiera-tiny'.")
    revision: str = Field(description="Pinned commit hash (or tag) of the repository.")
    files: tuple[str, ...] = Field(
        default=(), description="Glob patterns of the files needed; empty means the whole repo."
    )


class ModelCard(_Frozen):
    """What a model is and can do; shown by `segmentkit models` and `vision.models`."""

    id: str = Field(description="Stable lower-kebab id, e.g. 'sam2.1-hiera-tiny'.")
    aliases: tuple[str, ...] = Field(default=(), description="Other ids that load this model.")
    family: str = Field(description="Model family, e.g. 'sam2', 'segformer', 'classic'.")
    roles: tuple[Role, ...] = Field(description="Roles this model id serves.")
    tasks: tuple[Task, ...] = Field(description="Tasks the model performs.")
    prompt_kinds: tuple[PromptKindName, ...] = Field(default=(), description="Prompt kinds accepted.")
    labels: tuple[str, ...] = Field(default=(), description="Fixed label set, in class-id order.")
    description: str = Field(default="", description="One line for people.")
    params: int | None = Field(default=None, description="Number of parameters, if known.")
    license: str = Field(description="SPDX id or short licence name of the weights / code.")
    weights: WeightsSource | None = Field(default=None, description="Hub weights; None if weightless.")
    input_size: int | None = Field(default=None, description="Longest side the model runs at.")
    runtimes: tuple[Runtime, ...] = Field(default=("torch",), description="Runtimes supported.")
    precisions: tuple[Precision, ...] = Field(default=("fp32",), description="Precisions supported.")
    homepage: str = Field(default="", description="Paper or project page.")

    @field_validator("id", "aliases")
    @classmethod
    def _kebab(cls, v: Any) -> Any:
        for ident in [v] if isinstance(v, str) else v:
            if not _ID.match(ident):
                raise ValueError(f"model id {ident!r} must be lower-kebab (a-z, 0-9, '-', '.')")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ModelCard:
        if not self.roles:
            raise ValueError("a card needs at least one role")
        if "prompter" in self.roles and not self.prompt_kinds:
            raise ValueError("a prompter card must list its prompt_kinds")
        return self


class ModelOptions(BaseModel):
    """Options every model accepts; plugins subclass this for their own options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: Path | None = Field(default=None, description="Local checkpoint directory instead of the hub.")
    device: str = Field(default="auto", description="'auto' (CUDA, else MPS, else CPU), 'cpu', 'cuda', 'cuda:1', ...")
    runtime: Runtime | None = Field(default=None, description="Runtime; None takes the card's first.")
    precision: PrecisionChoice = Field(
        default="auto",
        description="Numeric precision; 'auto' takes bf16 where the device computes it natively and the "
                    "card lists it, else fp32 (resolved at load: the loaded handle's options show which).",
    )

    def precisions(self, card: ModelCard) -> tuple[str, ...]:
        """The precisions these options can run in (the card's; a plugin narrows it, e.g. for an engine)."""
        return card.precisions


class CallOptions(BaseModel):
    """Per-call options of a model (e.g. thresholds); plugins subclass this and name it in the spec.

    The core validates a call's keyword options with the spec's class and hands the plugin
    the validated instance as ``options=``; a model without its own class takes none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(BaseModel):
    """One model in one role, as returned by a plugin hook."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    card: ModelCard
    role: Role = Field(description="The role this spec fills; must be in card.roles.")
    loader: str = Field(description="'package.module:Class', called as Class(card, options).")
    options: type[ModelOptions] = Field(default=ModelOptions, description="Options model class.")
    call_options: type[CallOptions] = Field(
        default=CallOptions, description="Per-call options class, passed to the role method as options=."
    )

    @field_validator("loader")
    @classmethod
    def _loader(cls, v: str) -> str:
        if not _LOADER.match(v):
            raise ValueError(f"loader must look like 'package.module:Class', got {v!r}")
        return v

    @model_validator(mode="after")
    def _role_on_card(self) -> ModelSpec:
        if self.role not in self.card.roles:
            raise ValueError(f"spec role {self.role!r} is not in card.roles {self.card.roles} of model "
                             f"{self.card.id!r}: a card must list every role a hook returns it for")
        if not (isinstance(self.options, type) and issubclass(self.options, ModelOptions)):
            raise ValueError("options must be a subclass of segmentkit.ModelOptions")
        if not (isinstance(self.call_options, type) and issubclass(self.call_options, CallOptions)):
            raise ValueError("call_options must be a subclass of segmentkit.CallOptions")
        return self
