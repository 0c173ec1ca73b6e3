"""A trained network as a file that runs without resnas: a torch.export program or ONNX.

A resnas checkpoint needs resnas to rebuild its network; a deployment has torch (or
only ONNX Runtime) and the file. Both formats are written from one
``torch.export`` trace of the network in eval mode, on the CPU, so they compute the
same function: the batch dimension is traced as dynamic where the network allows
it, so one file serves any batch size; where it does not, the export falls back
to the example's batch and says why. Torch only; ONNX also needs the ``onnx``
extra (onnx, onnxscript).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nas.errors import NasError, one_line

FORMATS = ("pt2", "onnx")
INPUT_NAME, OUTPUT_NAME = "images", "logits"  # the ONNX graph's names for them
ONNX_PACKAGES = ("onnx", "onnxscript")  # what torch.onnx's exporter imports
ONNX_INSTALL = "pip install -e '.[onnx]'"
# torch.export specialises a dimension of size 0 or 1 to that constant: a dynamic batch
# is traced with at least this many images.
MIN_TRACE_BATCH = 2


@dataclass(frozen=True)
class Exported:
    """What :func:`export_model` wrote: the file, and the shapes it takes and gives."""

    path: Path
    format: str
    size: int  # bytes
    input_shape: tuple[int | str, ...]  # "batch" where any batch size runs
    output_shape: tuple[int | str, ...]
    fixed_batch_reason: str | None = None  # why the batch could not be left dynamic

    @property
    def dynamic_batch(self) -> bool:
        return self.fixed_batch_reason is None

    @property
    def how_to_load(self) -> str:
        """The Python that runs the file on a batch ``x`` (a tensor; numpy for ONNX)."""
        if self.format == "pt2":
            return f"torch.export.load({str(self.path)!r}).module()(x)"
        return (f"onnxruntime.InferenceSession({str(self.path)!r})"
                f".run(None, {{{INPUT_NAME!r}: x}})[0]")


def export_model(model: nn.Module, path: str | Path, format: str,
                 example_input_shape: tuple[int, ...]) -> Exported:
    """Write a network as a file that torch (``pt2``) or an ONNX runtime (``onnx``) runs.

    A copy of the model is exported, in eval mode and on the CPU; the model itself is
    left as it was. The batch is left free (traced with at least two images) unless the
    network pins it; then the file takes exactly ``N`` images and says why.

    Args:
        model: the network, e.g. from :func:`load_checkpoint`.
        path: the file to write; a ``pt2`` program's name must end in ``.pt2``.
        format: ``"pt2"`` (``torch.export``) or ``"onnx"`` (needs the ``onnx`` extra).
        example_input_shape: one input's full shape, batch first (``N, C, H, W``);
            everything but the batch is fixed in the file.

    Returns:
        What was written: path, size, input and output shapes (``"batch"`` where any
        batch size runs), and :attr:`Exported.fixed_batch_reason` where it does not.

    Raises:
        NasError: an unknown format, a ``.pt2`` name missing, the ONNX packages missing,
            or a path that cannot be written.
    """
    path = Path(path)
    if format not in FORMATS:
        raise NasError(f"export format {format!r}; allowed: {', '.join(FORMATS)}")
    if format == "pt2" and path.suffix != ".pt2":
        raise NasError(f"{path}: a torch.export program's name must end in .pt2 "
                       "(torch.export.load expects it)")
    if format == "onnx":
        require_onnx()
    model = copy.deepcopy(model).cpu().eval()
    program, example, reason = _trace(model, tuple(example_input_shape))
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            if format == "pt2":
                buffer = io.BytesIO()  # torch.export.save warns about any name but *.pt2
                torch.export.save(program, buffer)
                tmp.write_bytes(buffer.getvalue())
            else:
                shapes = ({0: torch.export.Dim("batch")},) if reason is None else None
                torch.onnx.export(program, (example,), str(tmp), dynamo=True,
                                  dynamic_shapes=shapes, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], external_data=False,
                                  verbose=False)
        tmp.replace(path)  # never leave a half-written file under the real name
    except OSError as exc:  # a full disk, a folder that refuses files
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise NasError(f"{path}: cannot be written ({exc.strerror or one_line(exc)})") from None
    with torch.no_grad():
        outputs = model(example)
    batch: int | str = "batch" if reason is None else example.shape[0]
    return Exported(path, format, path.stat().st_size, (batch, *example.shape[1:]),
                    (batch, *outputs.shape[1:]), reason)


def require_onnx() -> None:
    """Refuse ONNX export, in one line naming the install, where its packages are missing."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise NasError(f"ONNX export needs the packages {' and '.join(ONNX_PACKAGES)} "
                       f"({one_line(exc, 80)}): {ONNX_INSTALL}") from None


def _trace(model: nn.Module, shape: tuple[int, ...],
           ) -> tuple[torch.export.ExportedProgram, torch.Tensor, str | None]:
    """The network's program with a free batch dimension, else with the example's batch
    and why the free one failed (``None`` when it did not); and the example it traced."""
    example = torch.zeros(max(shape[0], MIN_TRACE_BATCH), *shape[1:])
    with _quiet():
        try:
            program = torch.export.export(model, (example,),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},))
            return program, example, None
        except Exception as exc:  # noqa: BLE001 - whatever pinned the batch: export it fixed
            reason = _why(exc)
        example = torch.zeros(shape)
        return torch.export.export(model, (example,)), example, reason


def _why(exc: Exception) -> str:
    """torch.export's reason for pinning the batch, in one line: its line that says what the
    code specialised where there is one (the first says only "Constraints violated")."""
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip(" -")]
    line = next((x for x in lines if "specialized" in x), lines[0] if lines else repr(exc))
    return one_line(f"torch.export: {line}", 160)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' own chatter (warnings, torch.onnx's log) while they run:
    the caller reports what was written, and the user needs nothing else."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
