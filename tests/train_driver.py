"""Run dcgan_mnist.train in this process and save the trained weights, for the distribution tests.

python tests/train_driver.py WEIGHTS.npz LOGICAL_CPUS [train flags...]
LOGICAL_CPUS > 1 splits the CPU into that many logical devices before TensorFlow starts, so
--strategy mirrored has several replicas on a machine without GPUs. Every replica's copy of
every weight is saved (name/replica_i), so the test can check they agree.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout

# isort: off
import dcgan_mnist  # noqa: F401,E402  (first: it silences TensorFlow's start-up)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
# isort: on

from dcgan_mnist.cli import OneLineErrorParser, UserError  # noqa: E402
from dcgan_mnist.config import add_arguments, from_args  # noqa: E402
from dcgan_mnist.train import train  # noqa: E402


def main():
    out, cpus, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if cpus > 1:
        physical = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(physical[0], [tf.config.LogicalDeviceConfiguration()] * cpus)
    parser = add_arguments(OneLineErrorParser(prog="train_driver"))
    try:
        model = train(from_args(parser.parse_args(argv)))
    except UserError as e:  # as train.main reports it
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    weights = {}
    for v in model.gen_vars + model.discrim_vars:
        name = v.name.split(":")[0].split("/")[0]
        copies = getattr(v, "values", None) or (v,)  # a MirroredVariable has one copy per local replica
        for i, copy in enumerate(copies):
            weights[f"{name}/replica_{i}"] = copy.numpy()
    np.savez(out, **weights)


if __name__ == "__main__":
    main()
