"""The face every runtime program shows (:mod:`.programs`): run, sync, pull, push.

A program is a plan compiled for one engine, bound to that plan's arrays. The defaults
here are those of programs whose arrays live in host memory (NumPy, C++): nothing to wait
for, nothing to move.
"""

from __future__ import annotations


class Program:
    """Base of :class:`~.codegen_numpy.NumpyProgram`, :class:`~.programs.CppProgram` and
    :class:`~.programs.CudaProgram`."""

    #: the generated source (NumPy, C++ or CUDA)
    source: str = ""

    def run(self, n: int) -> None:
        """Advance by ``n`` steps: every kernel of a step in order, then the ring
        bookkeeping (clear the next slot, step + 1)."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait until the steps asked for have run (host engines: at once)."""

    def pull(self, name: str) -> None:
        """Make the host copy of array ``name`` current."""

    def push(self, name: str) -> None:
        """Make the device copy of array ``name`` equal the host's."""

    def array_written(self, name: str) -> None:
        """The host wrote array ``name`` in place (between runs)."""
