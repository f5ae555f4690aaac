"""Reproduce "EfficientLLM: Scalable Pruning-Aware Pretraining for Architecture-Agnostic Edge Language Models"
(Xing et al., arXiv 2502.06663).

python reproduce/efficientllm.py                       # tiny scale (CPU): results/efficientllm/tiny/
python reproduce/efficientllm.py --smoke --out /tmp/e  # the smoke config (the test suite runs it)
accelerate launch reproduce/efficientllm.py --scale paper --device cuda  # a SmolLM source, the SmolLM corpus

Configs: reproduce/configs/efficientllm/{tiny,paper,smoke}.toml (`--config FILE` for another one).
"""

import sys

from reprokit.reproduce import main

if __name__ == "__main__":
    sys.exit(main("efficientllm"))
