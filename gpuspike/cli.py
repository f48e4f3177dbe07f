"""The ``gpuspike`` command line: one subcommand per job.

    gpuspike info                 which engine and device this machine would use

Subcommands register themselves in :data:`COMMANDS` (name -> (help, add_arguments, run)).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


def _info_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="auto", choices=("auto", "numpy", "cpp", "cupy"))


def _info(args: argparse.Namespace) -> int:
    from gpuspike.engine.backend import cuda_status, select_backend

    backend = select_backend(args.engine)
    ok, why = cuda_status()
    print(json.dumps({"engine": backend.name, "device": backend.device, "cuda_usable": ok,
                      "cuda": why}))
    return 0


COMMANDS: dict[str, Command] = {
    "info": ("show which engine and device gpuspike would use", _info_args, _info),
    "encode-audio": (
        "encode a folder of WAV files to an SHD-format spike file",
        lambda p: __import__("gpuspike.datasets.cli", fromlist=["_"]).add_encode_audio_arguments(p),
        lambda a: __import__("gpuspike.datasets.cli", fromlist=["_"]).run_encode_audio(a),
    ),
    "train": (
        "train a spiking network with EventProp (MNIST-5k, SHD-format files)",
        lambda p: __import__("gpuspike.training_cli", fromlist=["_"]).add_train_arguments(p),
        lambda a: __import__("gpuspike.training_cli", fromlist=["_"]).run_train(a),
    ),
    "sweep": (
        "run a parameter sweep / LOSO cross-validation as Ray tasks (resumable)",
        lambda p: __import__("gpuspike.sweep.cli", fromlist=["_"]).add_sweep_arguments(p),
        lambda a: __import__("gpuspike.sweep.cli", fromlist=["_"]).run_sweep(a),
    ),
}


#: Errors that mean "the user's input cannot be used" (typed gpuspike errors, files that are
#: missing or unreadable, values out of range): one line and exit status 2, as argparse
#: does for bad options. Anything else is a gpuspike bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from gpuspike.bridge.errors import GpuspikeError

    return (GpuspikeError, *USER_ERRORS)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return text if len(text) <= 400 else text[:397] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpuspike", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error")
        add_arguments(p)
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    if hasattr(args, "debug"):
        delattr(args, "debug")  # the commands' own options only
    try:
        return COMMANDS[args.command][2](args)
    except KeyboardInterrupt:
        print("gpuspike: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        if debug:
            raise
        print(f"gpuspike: error: {_one_line(exc)} (--debug shows the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
