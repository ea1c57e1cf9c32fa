"""The benchmark's extras: measurements beside the Locust scenarios (the saga's completed
transfers, spreading against naive sharding, the routing strategies), behind one protocol.

An ``Extra`` has a name (its key under ``extras`` in results.json, the ratios' path
``extras.<name>.<figure>``, and what ``--extras`` picks) and a run function, all with the
signature of ``ExtraRun``, returning an ``ExtraResult``: the one shape the report renders
(figures as a list, an optional table and plot; details are kept in results.json only).
No Locust import here (see ``loadtest.bench``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from loadtest.service import Service

Scalar = int | float | str | bool | None

_TABLE, _PLOT = "table", "plot"


@dataclass(frozen=True)
class Plot:
    """One PNG of the report: bars side by side per x, or one line per series."""

    title: str
    x: list
    series: dict[str, list[float]]
    kind: str = "lines"
    xlabel: str = ""
    ylabel: str = ""

    def as_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "kind": self.kind,
            "title": self.title,
            "x": self.x,
            "series": self.series,
        }
        document.update(
            {label: getattr(self, label) for label in ("xlabel", "ylabel") if getattr(self, label)}
        )
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Plot:
        return cls(
            title=document["title"],
            x=list(document["x"]),
            series=dict(document["series"]),
            kind=document.get("kind", "lines"),
            xlabel=document.get("xlabel", ""),
            ylabel=document.get("ylabel", ""),
        )


@dataclass(frozen=True)
class ExtraResult:
    """What an extra measured. ``figures`` are scalars, listed by the report and read by the
    ratios; ``table`` rows share their keys; ``details`` (nested figures, samples) are stored
    in results.json and not rendered."""

    figures: dict[str, Scalar]
    table: list[dict[str, Scalar]] = field(default_factory=list)
    plot: Plot | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_document(self) -> dict[str, Any]:
        """The JSON of results.json's ``extras.<name>``: figures and details side by side."""
        document: dict[str, Any] = {**self.figures, **self.details}
        if self.table:
            document[_TABLE] = self.table
        if self.plot:
            document[_PLOT] = self.plot.as_document()
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ExtraResult:
        figures, details = {}, {}
        for key, value in document.items():
            if key in (_TABLE, _PLOT):
                continue
            if isinstance(value, (dict, list)):
                details[key] = value
            else:
                figures[key] = value
        plot = document.get(_PLOT)
        return cls(
            figures=figures,
            table=list(document.get(_TABLE) or []),
            plot=Plot.from_document(plot) if plot else None,
            details=details,
        )


class ExtraRun(Protocol):
    def __call__(self, *, service: Service, scale: float, work_dir: Path) -> ExtraResult:
        """Measure against the running ``service``; ``scale`` (1.0 for ``make bench``, less
        for ``make bench-quick``) shortens the run; scratch files go to ``work_dir``."""
        ...


@dataclass(frozen=True)
class Extra:
    name: str
    run: ExtraRun
    description: str = ""
