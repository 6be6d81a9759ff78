"""The errors slimdet raises for bad input: each names the problem and what to do."""


class SlimdetError(Exception):
    """Base class: the CLI prints these as one line and exits 2, without a traceback."""


def exit_status(run, args, prog: str) -> int:
    """``run(args)`` as a command's exit status: 0, or 2 with one line ``prog: error: ...`` for a
    SlimdetError."""
    import sys

    try:
        run(args)
    except SlimdetError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return 0


class UnknownModelError(SlimdetError):
    pass


class UnknownTargetError(SlimdetError):
    pass


class AssetError(SlimdetError):
    """A fetched file is missing, unreadable, or fails its sha256 check."""


class UnsupportedOpError(SlimdetError):
    """The importer met an operator it has no converter for."""


class ArtifactError(SlimdetError):
    """An exported library or its metadata is missing, corrupt, or does not match."""


class InputError(SlimdetError):
    """An image that cannot be read, or an input tensor of the wrong shape."""


class BuildError(SlimdetError):
    """A library could not be built as its target needs (missing toolchain, wrong device code)."""


class CheckpointError(SlimdetError):
    """A trained checkpoint is missing, corrupt, or for another architecture."""
