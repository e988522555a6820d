"""The versioned indicator catalogue, kept as data in ``data/indicators-v*.toml``.

Loaded lazily and cached: nothing is read at import time.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from mset_contract.vocab import IndicatorArea, IndicatorKind

CURRENT_CATALOGUE_VERSION = "1"


class CatalogueIndicator(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    area: IndicatorArea
    kind: IndicatorKind
    label: str


class IndicatorCatalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    published: str
    indicator: tuple[CatalogueIndicator, ...]

    @model_validator(mode="after")
    def _codes_unique_and_every_area_covered(self) -> IndicatorCatalogue:
        codes = [i.code for i in self.indicator]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"duplicate indicator codes: {', '.join(duplicates)}")
        missing = set(IndicatorArea) - {i.area for i in self.indicator}
        if missing:
            raise ValueError(f"areas with no indicator: {', '.join(sorted(missing))}")
        return self

    def get(self, code: str) -> CatalogueIndicator | None:
        return self.by_code().get(code)

    def by_code(self) -> dict[str, CatalogueIndicator]:
        return _index(self)


@cache
def _index(catalogue: IndicatorCatalogue) -> dict[str, CatalogueIndicator]:
    return {i.code: i for i in catalogue.indicator}


class UnknownCatalogueVersion(LookupError):
    """No catalogue of that version; the message names the versions that exist."""


def available_versions() -> list[str]:
    files = resources.files("mset_contract").joinpath("data").iterdir()
    names = [f.name for f in files if f.name.startswith("indicators-v")]
    return sorted(n.removeprefix("indicators-v").removesuffix(".toml") for n in names)


@cache
def load_catalogue(version: str = CURRENT_CATALOGUE_VERSION) -> IndicatorCatalogue:
    """Return catalogue ``version``; raises ``UnknownCatalogueVersion`` for an unknown one."""
    known = available_versions()
    if version not in known:
        raise UnknownCatalogueVersion(
            f"no catalogue version {version!r}; the versions are: {', '.join(known)}"
        )
    path = resources.files("mset_contract").joinpath("data", f"indicators-v{version}.toml")
    return IndicatorCatalogue.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


# The catalogue's closed vocabularies in the OpenAPI schema (``json_schema_extra``: read when a
# schema is generated, never at import). A code is listed when any version has it; the exact
# version's membership is the tool's own rule (a catalogue version changes its codes rarely,
# and the request names its version).
def versions_in_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = available_versions()


def codes_in_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = sorted(
        {i.code for v in available_versions() for i in load_catalogue(v).indicator}
    )
