#!/usr/bin/env python3
"""Train the digits MLP of ``train_digits.py`` on several processes with ``DistributedDataParallel``.

Each process (rank) holds a replica of the model and trains on its own share of every epoch
(``DistributedSampler``); backward averages the gradients across ranks, so that the replicas take the same
steps as one process on the whole batch: the global batch is ``train_digits.py``'s 32 images, split over the
ranks, and the test accuracy reaches the single-process run's. Rank 0 writes the trained weights
(``gradcore.save`` of the model's ``state_dict``).

Usage::

    mpiexec -n 2 python examples/train_digits_ddp.py                 # 30 epochs, 2 processes, CPU ("mpi")
    mpiexec -n 2 python examples/train_digits_ddp.py --device cuda   # one GPU per process ("nccl")
    mpiexec -f hosts -n 4 python examples/train_digits_ddp.py        # over the machines of an MPI hostfile
    GRADCORE_EXAMPLE_QUICK=1 mpiexec -n 2 python examples/train_digits_ddp.py   # 5 epochs (smoke test)

Needs mpi4py and MPICH (``pip install -e ".[distributed,examples]"``). It also runs as one process, without
``mpiexec``. The script exits with an error message on every rank if the final test accuracy is too low (the
thresholds of ``train_digits.py``) or if the replicas' weights differ at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import gradcore as torch
import gradcore.distributed as dist
from gradcore import nn
from gradcore.nn.parallel import DistributedDataParallel
from gradcore.utils.data import DataLoader, DistributedSampler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The data, the model and the accuracy thresholds are train_digits.py's, so that the two runs compare.
from train_digits import (BATCH_SIZE, DEFAULT_EPOCHS, LABEL_SMOOTHING, LEARNING_RATE,  # noqa: E402
                          MIN_ACCURACY_FULL, MIN_ACCURACY_SHORT, QUICK_EPOCHS, accuracy, build_model, load_data)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; GRADCORE_EXAMPLE_QUICK=1 cuts the default number of epochs."""
    quick = os.environ.get("GRADCORE_EXAMPLE_QUICK", "") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cpu (the 'mpi' backend) or cuda (one GPU per rank, the 'nccl' backend)")
    parser.add_argument("--epochs", type=int, default=QUICK_EPOCHS if quick else DEFAULT_EPOCHS,
                        help=f"training epochs (default: {DEFAULT_EPOCHS}, or {QUICK_EPOCHS} with "
                             "GRADCORE_EXAMPLE_QUICK=1)")
    parser.add_argument("--lr", type=float, default=LEARNING_RATE, help=f"Adam's learning rate ({LEARNING_RATE})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, weights and shuffling")
    parser.add_argument("--checkpoint", default="digits_ddp.pt",
                        help="where rank 0 writes the trained weights (default: digits_ddp.pt)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    return args


def local_rank() -> int:
    """Return this process's rank among the processes of its machine, as the launcher numbered them."""
    for name in ("LOCAL_RANK", "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"):
        if name in os.environ:
            return int(os.environ[name])
    return 0


def main(argv: list[str] | None = None) -> None:
    """Train on every rank, save on rank 0, and raise SystemExit if the accuracy or the replicas are wrong."""
    args = parse_args(argv)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
        # One GPU per process: the process's rank among those of its machine picks it (NCCL refuses two ranks
        # on one GPU).
        device = torch.device("cuda", local_rank() % torch.cuda.device_count())
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("mpi")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if BATCH_SIZE % world_size:
        raise SystemExit(f"the global batch of {BATCH_SIZE} images must split evenly over {world_size} ranks")

    torch.manual_seed(args.seed)  # the same on every rank; the broadcast at wrap time would fix it otherwise
    train_set, x_test, y_test = load_data(args.seed)
    x_test, y_test = x_test.to(device), y_test.to(device)
    # Every rank draws the same permutation (seed + epoch) and takes its own stride of it.
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(train_set, batch_size=BATCH_SIZE // world_size, sampler=sampler)

    model = DistributedDataParallel(build_model().to(device))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        epoch_loss = torch.zeros(2, dtype=torch.float64, device=device)  # sum of losses, number of images
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()  # the gradients are averaged over the ranks during this call
            optimizer.step()
            epoch_loss += torch.tensor([loss.item() * len(labels), len(labels)], dtype=torch.float64,
                                       device=device)
        dist.all_reduce(epoch_loss)
        test_accuracy = accuracy(model.module, x_test, y_test)
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {epoch_loss[0].item() / epoch_loss[1].item():.4f}, "
                  f"test accuracy {100 * test_accuracy:.2f}%", flush=True)
    seconds = time.perf_counter() - start

    # The replicas must have stayed identical: the sum of all weights, compared through its min and max.
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    lowest, highest = checksum.clone(), checksum.clone()
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    if rank == 0:
        torch.save(model.module.state_dict(), args.checkpoint)
    dist.barrier()  # the checkpoint exists once any rank goes on

    final_accuracy = accuracy(model.module, x_test, y_test)
    min_accuracy = MIN_ACCURACY_FULL if args.epochs >= DEFAULT_EPOCHS else MIN_ACCURACY_SHORT
    if rank == 0:
        print(f"world size {world_size}, device {args.device}, {args.epochs} epochs in {seconds:.1f} s")
        print(f"replica weight checksums: min {lowest.item():.12g}, max {highest.item():.12g}")
        print(f"test accuracy {100 * final_accuracy:.2f}%")
        print(f"checkpoint written to {args.checkpoint}")
    dist.destroy_process_group()
    if lowest.item() != highest.item():
        raise SystemExit(f"FAILED: the replicas' weights differ (checksums {lowest.item()} and {highest.item()})")
    if not final_accuracy >= min_accuracy:
        raise SystemExit(f"FAILED: test accuracy {100 * final_accuracy:.2f}% is below {100 * min_accuracy:.0f}% "
                         f"after {args.epochs} epochs")


if __name__ == "__main__":
    main()
