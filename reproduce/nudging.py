"""Reproduce "Nudging: Inference-time Alignment via Model Collaboration" (Fei et al., arXiv 2410.09300).

python reproduce/nudging.py                          # tiny scale: CPU, 3 seeds; writes results/nudging/tiny/
python reproduce/nudging.py --smoke --out /tmp/n     # the smoke config (seconds; the test suite runs it)
python reproduce/nudging.py --scale paper            # the paper's models and 13 tasks (GPUs + a judge)
python reproduce/nudging.py --scale paper --fresh    # recompute every piece instead of resuming

Configs: reproduce/configs/nudging/{tiny,paper,smoke}.toml (`--config FILE` for another one).
"""

import sys

from reprokit.reproduce import main

if __name__ == "__main__":
    sys.exit(main("nudging"))
