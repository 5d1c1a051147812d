"""Type stubs of the compiled module (python/src/lib.rs)."""

from typing import Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

Share = Tuple[int, int, npt.NDArray[np.float32], npt.NDArray[np.float32], List[float]]

class EbmError(Exception):
    """An error from the engine; the message names the input at fault."""

def run(args: List[str], progress: bool = False) -> None:
    """Runs one `ebm` command (the arguments after `ebm`) in this process, GIL released."""

def join_shares(shares: List[Share]) -> Share:
    """Shares of consecutive batch rows joined in the order given."""

class Energy:
    """An energy E(x) in memory."""

    @staticmethod
    def resolve(spec: str) -> "Energy": ...
    @staticmethod
    def from_tensors(arch: str, tensors: Dict[str, npt.NDArray[np.float32]]) -> "Energy": ...
    @property
    def spec(self) -> Optional[str]: ...
    @property
    def dim(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def arch(self) -> Optional[str]: ...
    def energy_grad(self, x: npt.NDArray[np.float32]) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Energies [n] and gradients [n, dim] of float32 rows x [n, dim]."""
    def save(self, path: str) -> None:
        """Writes a network energy as a safetensors file (net:PATH)."""

class ShardTrainer:
    """One data-parallel worker of a run dir's training (CPU executor)."""

    def __init__(self, run_dir: str) -> None: ...
    @property
    def step(self) -> int: ...
    @property
    def batch(self) -> int: ...
    def share(self, first: int, end: int) -> Share: ...
    def finish(self, share: Share) -> Dict[str, float]: ...
    def params(self) -> npt.NDArray[np.float32]: ...
    def record(self, run_dir: str, wall_seconds: float, how: str) -> None: ...
