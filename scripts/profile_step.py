"""Where the training step's time goes: TensorFlow's profiler over D-and-G pairs, op time by kind.

    python scripts/profile_step.py [--precision float32|bf16] [--pairs 10] [--top 15]

Runs the step as train.py does with a large --log-every (D iterations, and G iterations whose
figures are not printed), averaged generator on, on random images, under tf.profiler, then sums the
time of every op the trace records by kind: matmuls, convs forward, conv filter and input
gradients, batchnorm, Adam and the average, casts, the rest. Ops run two at a time on these 2-core
machines (TensorFlow's inter-op threads), so op time adds up to more than wall time; the shares
are what to read. Reads the trace with TensorFlow's own XPlane protobuf (tensorflow.tsl).
"""
import argparse
import collections
import glob
import os
import sys
import tempfile
import time

KINDS = [  # (kind, substrings of the op type), first match wins
    ("matmul", ("MatMul", "Einsum")),
    ("conv filter gradient", ("Conv2DBackpropFilter",)),
    ("conv input gradient, conv-transpose", ("Conv2DBackpropInput",)),
    ("conv", ("Conv2D",)),
    ("batchnorm", ("FusedBatchNorm",)),
    ("Adam and the average", ("ApplyAdam", "AssignSub", "AssignAdd")),
    ("casts", ("Cast",)),
    ("slices, pads, concats, transposes", ("Slice", "Pad", "Concat", "Transpose", "Split", "DepthToSpace", "Gather")),
    ("leaky ReLU, ReLU", ("Relu",)),
]


def kind_of(op_type):
    return next((k for k, keys in KINDS if any(key in op_type for key in keys)), "other elementwise")


def run_profiled(precision, pairs, logdir):
    import tensorflow as tf

    from dcgan_mnist import train
    from dcgan_mnist.config import Config
    cfg = Config(precision=precision, seed=0)
    _, steps, _, _ = train.build(cfg, tf.distribute.get_strategy())  # the step train.py runs, averaged generator on
    images = tf.random.uniform([cfg.batch_size, 28, 28, 1])
    labels = tf.random.uniform([cfg.batch_size], 0, cfg.dim_y, dtype=tf.int32)

    def pair():
        steps.d_step(images, labels)
        float(steps.g_step_unprinted(images, labels)[1])

    for _ in range(3):
        pair()
    tf.profiler.experimental.start(logdir)
    t = time.perf_counter()
    for _ in range(pairs):
        pair()
    wall = time.perf_counter() - t
    tf.profiler.experimental.stop()
    return wall


def op_times(logdir):
    """{op type: picoseconds} over TensorFlow's compute threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_type = name.rpartition(":")[2]
                if ":" in name and op_type != "Process":  # "op name:op type"; the rest are the executor's
                    times[op_type] += event.duration_ps
    return times


def main(argv=None):
    p = argparse.ArgumentParser(prog="python scripts/profile_step.py", description=__doc__.splitlines()[0])
    p.add_argument("--precision", default="float32", choices=("float32", "bf16"))
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--top", type=int, default=15, help="op types listed (default: %(default)s)")
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import dcgan_mnist  # noqa: F401  (TensorFlow's start-up quiet, oneDNN on)
    with tempfile.TemporaryDirectory() as logdir:
        wall = run_profiled(args.precision, args.pairs, logdir)
        times = op_times(logdir)
    total = sum(times.values())
    kinds = collections.Counter()
    for op, ps in times.items():
        kinds[kind_of(op)] += ps
    print(f"{args.precision}: {args.pairs} D-and-G pairs, {wall / args.pairs / 2:.4f} s/iteration under the profiler; "
          f"op time {total / 1e12 / wall:.2f} x wall time (ops overlap)")
    for kind, ps in kinds.most_common():
        print(f"  {ps / total:6.1%}  {kind}")
    print("op types:")
    for op, ps in times.most_common(args.top):
        print(f"  {ps / total:6.1%}  {op}")


if __name__ == "__main__":
    main()
