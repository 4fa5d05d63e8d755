"""The ``spikefield`` command line (verbs are added by the CLI module's commands)."""

from __future__ import annotations

import typer

from . import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="spikefield: recordings -> circuit models, spatial codes and memories.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spikefield {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """spikefield command line."""


@app.command()
def demo(out: str = typer.Option("spikefield-demo", help="Output folder.")) -> None:
    """Simulate place cells, bin them and print a summary (placeholder until the demo lands)."""
    from .simulate import place_cells

    sim = place_cells(60, run_duration=120, seed=0)
    raster = sim.recording.bin(sim.dt, epoch="run")
    typer.echo(sim.recording.summary())
    typer.echo(repr(raster))


def main() -> None:
    """Console-script entry point."""
    app()
