"""Our training step against PyTorch's on the same networks, side by side (issue 20's comparison).

    python scripts/bench_torch_peer.py                     # 3 interleaved rounds, both networks
    python scripts/bench_torch_peer.py --rounds 1 --tiny   # a check: 32x32, batch 4, 10 classes

PyTorch is not a dependency of keras-arcface: install it where you run this (``pip install torch``).
The PyTorch networks here mirror ``keras_arcface.backbones`` layer for layer (MobileFaceNet with
symmetric padding, 128-d; IResNet-18, 512-d; the script checks that both frameworks count the same
parameters), as arcface_torch builds them: convolutions without bias, BatchNorm, per-channel PReLU
(0.25), IBasicBlocks.  Both train ArcFace (s 64, m 0.5) over ``--num-classes`` with SGD (momentum
0.9) on random images, batch 64, every step another of 4 batches, on the same number of threads
(``--threads``, default all cores).  Rows:

- ``keras graph``: ``scripts/train_speed.py``'s row (TensorFlow graph mode, the default path);
- ``torch eager`` and ``torch compile`` (``torch.compile`` of the whole training step's model).

Each row runs in its own process; the rows of a round run one after another and the rounds are
interleaved, so a busy machine slows every row alike.  Printed: each row's median over the rounds
of its median step (samples/s), and ours over ``torch compile``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from train_speed import add_workload_arguments, tiny_if_asked  # the same workload as the training benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: network -> embedding size, as scripts/train_speed.py builds them.
EMBEDDING_SIZES = {"mobilefacenet": 128, "iresnet18": 512}
#: MobileFaceNet's bottleneck stages (expansion, channels, repeats, first stride), as ours.
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def torch_networks():
    """name -> builder(image_size, embedding_size) of the PyTorch mirrors."""
    import torch
    from torch import nn

    def conv_bn(cin, cout, kernel, stride, act=True, depthwise=False, padding=None):
        padding = (kernel - 1) // 2 if padding is None else padding
        layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=cin if depthwise else 1, bias=False),
                  nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, nn.PReLU(cout, 0.25)) if act else nn.Sequential(*layers)

    class Bottleneck(nn.Module):
        def __init__(self, cin, expansion, cout, stride):
            super().__init__()
            hidden = cin * expansion
            self.body = nn.Sequential(conv_bn(cin, hidden, 1, 1), conv_bn(hidden, hidden, 3, stride, depthwise=True),
                                      conv_bn(hidden, cout, 1, 1, act=False))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.body(x) if self.residual else self.body(x)

    def mobilefacenet(size, embedding):
        layers = [conv_bn(3, 64, 3, 2), conv_bn(64, 64, 3, 1, depthwise=True)]
        channels = 64
        for expansion, cout, repeats, stride in BOTTLENECKS:
            for i in range(repeats):
                layers.append(Bottleneck(channels, expansion, cout, stride if i == 0 else 1))
                channels = cout
        layers += [conv_bn(channels, 512, 1, 1), conv_bn(512, 512, size // 16, 1, act=False, depthwise=True, padding=0),
                   conv_bn(512, embedding, 1, 1, act=False), nn.Flatten()]
        return nn.Sequential(*layers)

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(cout), nn.PReLU(cout, 0.25),
                                      nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                             if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            return self.body(x) + self.shortcut(x)

    def iresnet18(size, embedding):
        layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64, 0.25)]
        channels = 64
        for stage in range(4):
            for i in range(2):
                layers.append(BasicBlock(channels, 64 * 2**stage, 2 if i == 0 else 1))
                channels = 64 * 2**stage
        features = nn.BatchNorm1d(embedding)
        features.weight.requires_grad_(False)  # as ours: the last BatchNorm has no learned scale
        layers += [nn.BatchNorm2d(channels), nn.Dropout(0.0), nn.Flatten(),
                   nn.Linear(channels * (size // 16) ** 2, embedding), features]
        return nn.Sequential(*layers)

    del torch
    return {"mobilefacenet": mobilefacenet, "iresnet18": iresnet18}


def torch_row(network, mode, args):
    """One PyTorch row in this process: samples/s of the median timed step."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    embedding = EMBEDDING_SIZES[network]

    class ArcFace(nn.Module):
        """cos(theta + m) for the label, cos(theta) elsewhere, times s (Deng et al., CVPR 2019)."""

        def __init__(self, classes, scale=64.0, margin=0.5):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(classes, embedding) * 0.01)
            self.scale, self.margin = scale, margin

        def forward(self, x, labels):
            cosine = F.linear(F.normalize(x), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
            target = torch.cos(torch.acos(cosine.gather(1, labels[:, None])) + self.margin)
            return self.scale * cosine.scatter(1, labels[:, None], target)

    class Step(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = torch_networks()[network](args.image_size, embedding)
            self.head = ArcFace(args.num_classes)

        def forward(self, images, labels):
            return F.cross_entropy(self.head(self.backbone(images), labels), labels)

    model = Step().train()
    parameters = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if mode == "compile" else model
    rng = np.random.default_rng(0)
    batches = [(torch.from_numpy(rng.normal(size=(args.batch_size, 3, args.image_size, args.image_size))
                                 .astype("float32")),
                torch.from_numpy(rng.integers(0, args.num_classes, args.batch_size))) for _ in range(4)]
    times = []
    for step in range(args.warmup + args.steps):
        images, labels = batches[step % len(batches)]
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = forward(images, labels)
        loss.backward()
        optimizer.step()
        float(loss)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[args.warmup:])
    return {"network": network, "row": f"torch {mode}", "samples_per_s": args.batch_size / median,
            "backbone_parameters": parameters, "torch": torch.__version__}


def keras_parameters(network, image_size):
    """Trainable parameters of our backbone (what the mirror must match)."""
    import numpy as np

    sys.path.insert(0, ROOT)
    from keras_arcface.backbones import get_backbone

    backbone = get_backbone(network, input_shape=(image_size, image_size, 3), embedding_size=EMBEDDING_SIZES[network])
    return sum(int(np.prod(weight.shape)) for weight in backbone.trainable_weights)


def _in_a_process(argv, env=None):
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", nargs="+", default=list(EMBEDDING_SIZES), choices=list(EMBEDDING_SIZES))
    parser.add_argument("--rows", nargs="+", default=["keras graph", "torch eager", "torch compile"])
    parser.add_argument("--rounds", type=int, default=3)
    add_workload_arguments(parser, steps=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="append one JSON line per measured row to this file")
    parser.add_argument("--torch-row", nargs=2, metavar=("NETWORK", "MODE"), help=argparse.SUPPRESS)
    args = tiny_if_asked(parser.parse_args(argv))
    if args.torch_row:
        print(json.dumps(torch_row(*args.torch_row, args)))
        return
    sizes = ["--batch-size", str(args.batch_size), "--image-size", str(args.image_size),
             "--num-classes", str(args.num_classes), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    threads = {"OMP_NUM_THREADS": str(args.threads), "TF_NUM_INTEROP_THREADS": "1",
               "TF_NUM_INTRAOP_THREADS": str(args.threads)}
    results = {}
    for network in args.networks:
        ours = keras_parameters(network, args.image_size)
        for round_ in range(args.rounds):
            for row in args.rows:
                if row == "keras graph":
                    result = _in_a_process([os.path.join(ROOT, "scripts", "train_speed.py"), *sizes,
                                            "--row", network, "graph"],
                                           {"KERAS_BACKEND": "tensorflow", **threads})
                else:
                    result = _in_a_process([os.path.abspath(__file__), *argv, "--torch-row", network,
                                            row.split()[1]], threads)
                    if result["backbone_parameters"] != ours:
                        sys.exit(f"the PyTorch {network} has {result['backbone_parameters']:,} parameters, ours "
                                 f"{ours:,}: the mirror is not the same network")
                results.setdefault((network, row), []).append(result["samples_per_s"])
                print(f"round {round_ + 1} {network:<14} {row:<14} {result['samples_per_s']:8.2f} samples/s",
                      flush=True)
                if args.json:
                    with open(args.json, "a") as handle:
                        handle.write(json.dumps({"network": network, "row": row, "round": round_ + 1,
                                                 "samples_per_s": result["samples_per_s"]}) + "\n")
    print(f"\n{'network':<14} {'row':<14} {'samples/s (median of rounds)':>29}")
    for (network, row), values in results.items():
        print(f"{network:<14} {row:<14} {statistics.median(values):>29.2f}")
    for network in args.networks:
        if (network, "keras graph") in results and (network, "torch compile") in results:
            ratio = statistics.median(results[network, "keras graph"]) / statistics.median(results[network,
                                                                                                   "torch compile"])
            print(f"{network}: keras graph / torch compile = {ratio:.2f}x (issue 20's goal: 1.2x)")


if __name__ == "__main__":
    main()
