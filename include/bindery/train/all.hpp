// bindery/train/all.hpp — training: the Trainer (tasks, schedule, clipping, evaluation), atomic
// resumable checkpoints, the progress bar and the JSONL metrics log.
#pragma once

#include "bindery/train/checkpoint.hpp"
#include "bindery/train/progress.hpp"
#include "bindery/train/trainer.hpp"
