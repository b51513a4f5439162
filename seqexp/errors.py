"""Errors a user can act on: each message names the file, row or config key, and the fix."""


class SeqexpError(Exception):
    """Base class; the command-line entry points print these without a stack trace."""


class DataError(SeqexpError):
    """The behaviour log (or its config under `data.*`) cannot be used as it is."""


class ConfigError(SeqexpError):
    """A config value is invalid; the message names the key."""


class RunDirInUse(ConfigError):
    """The run dir holds another run (finished, or resumable) that this command would overwrite."""

    keeps_run_dir = True  # the failure is not recorded there: the dir is not this command's


class ResumeMismatch(ConfigError):
    """trainer.resume=true, but the snapshot was written by a run with other data or another config."""

    keeps_run_dir = True


class RecommendError(SeqexpError):
    """A recommendation request cannot be served (bad run dir, empty history, ...)."""


class CompareError(SeqexpError):
    """seqexp-compare cannot build a leaderboard as asked (no runs, a wrong path, an unknown metric or baseline)."""


class CheckpointError(SeqexpError):
    """A checkpoint is missing, truncated or not ours."""


class TrainingDiverged(SeqexpError):
    """The training loss became NaN or infinite; the message names the step."""


class ExportError(SeqexpError):
    """A run cannot be exported as it is (no run dir, its log changed since training, ...)."""
