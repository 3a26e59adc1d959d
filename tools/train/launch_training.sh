#!/bin/sh
# Launch the two real training runs concurrently, one thread each, niced (see README.md).
# Target: TARGET_MIN minutes.  Draft: DRAFT_PLAIN_MIN minutes plain, then DRAFT_DISTILL_MIN minutes distilled
# from the target's latest checkpoint (reloaded whenever the target writes a new one).
set -e
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
T=tools/train
TARGET_MIN=${TARGET_MIN:-90}
DRAFT_PLAIN_MIN=${DRAFT_PLAIN_MIN:-45}
DRAFT_DISTILL_MIN=${DRAFT_DISTILL_MIN:-50}
mkdir -p $T/work/logs
nohup nice -n 19 $PY $T/train.py --name target --preset target --minutes $TARGET_MIN --lr 1.5e-3 \
    --resume > $T/work/logs/target.out 2>&1 &
echo $! > $T/work/logs/target.pid
nohup sh -c "nice -n 19 $PY $T/train.py --name draft-plain --preset draft --minutes $DRAFT_PLAIN_MIN --lr 2e-3 --resume && \
  nice -n 19 $PY $T/train.py --name draft --preset draft --minutes $DRAFT_DISTILL_MIN --lr 1e-3 --warmup 50 \
     --long-frac 0.7 --init $T/work/ckpt/draft-plain.pt --teacher $T/work/ckpt/target.pt --resume" \
    > $T/work/logs/draft.out 2>&1 &
echo $! > $T/work/logs/draft.pid
