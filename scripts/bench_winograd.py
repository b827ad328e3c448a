"""Could fewer multiplications beat the fp32 convolution peak? Winograd F(2x2, 3x3) against torch's
direct 3x3 convolution, forward, on MgNet's widest fp32 benchmark layer (issue 24's "2x the
authors' model": docs/benchmarks.md).

    .venv/bin/python scripts/bench_winograd.py --threads 2

F(2x2, 3x3) computes a 2x2 output tile from a 4x4 input tile with 16 multiplications per channel
pair instead of 36 (2.25x fewer): the input and weight tiles are transformed (B^T d B, G g G^T), 16
batched matrix products (tiles x C_in) @ (C_in x C_out) do the channel mixing, and A^T m A turns
their result back into outputs. The script checks it against ``F.conv2d`` (relative error), then
times, best of ``--rounds``, side by side: the direct convolution, the whole Winograd forward, and
its 16 matrix products alone, which bound any Winograd written with torch's operations from below.
"""

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

B_T = torch.tensor([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=torch.float32)
G = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float32)
A_T = torch.tensor([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=torch.float32)


def winograd_tiles(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, H) -> (16, N * (H/2)^2, C): each 4x4 input tile (stride 2, zero padding 1), transformed."""
    n, c, h, _ = x.shape
    tiles = F.pad(x, (1, 1, 1, 1)).unfold(2, 4, 2).unfold(3, 4, 2)  # (N, C, H/2, H/2, 4, 4)
    return (B_T @ tiles @ B_T.T).permute(4, 5, 0, 2, 3, 1).reshape(16, n * (h // 2) ** 2, c)


def winograd_weights(w: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, 3, 3) -> (16, C_in, C_out)."""
    return (G @ w @ G.T).permute(2, 3, 1, 0).reshape(16, w.shape[1], w.shape[0])


def winograd_conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, w, padding=1)`` for 3x3 ``w`` and even H = W, by F(2x2, 3x3)."""
    n, _, h, _ = x.shape
    m = torch.bmm(winograd_tiles(x), winograd_weights(w))  # (16, tiles, C_out)
    m = m.reshape(4, 4, n, h // 2, h // 2, -1).permute(2, 5, 3, 4, 0, 1)  # (N, C_out, H/2, H/2, 4, 4)
    out = A_T @ m @ A_T.T  # (N, C_out, H/2, H/2, 2, 2)
    return out.permute(0, 1, 2, 4, 3, 5).reshape(n, -1, h, h)


def best_of(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, generator=generator)
    w = torch.randn(args.channels, args.channels, 3, 3, generator=generator) / 24
    direct = F.conv2d(x, w, padding=1)
    error = ((winograd_conv(x, w) - direct).abs().max() / direct.abs().max()).item()
    tiles, weights = winograd_tiles(x), winograd_weights(w)
    flops = 2 * 9 * args.channels**2 * args.size**2 * args.batch  # the direct convolution's
    product_flops = 2 * 16 * tiles.shape[1] * args.channels**2
    print(f"torch {torch.__version__}, {args.threads} thread(s); x {tuple(x.shape)}, w {tuple(w.shape)}; "
          f"Winograd's largest relative error {error:.1e}")
    for _ in range(2):  # two rounds of the three, interleaved
        conv = best_of(args.rounds, lambda: F.conv2d(x, w, padding=1))
        whole = best_of(args.rounds, lambda: winograd_conv(x, w))
        products = best_of(args.rounds, lambda: torch.bmm(tiles, weights))
        print(f"direct {conv * 1e3:.1f} ms ({flops / conv / 1e9:.0f} GFLOP/s); Winograd {whole * 1e3:.1f} ms "
              f"(direct / Winograd {conv / whole:.2f}); its 16 products alone {products * 1e3:.1f} ms "
              f"({product_flops / products / 1e9:.0f} GFLOP/s, direct / products {conv / products:.2f})")


if __name__ == "__main__":
    main()
