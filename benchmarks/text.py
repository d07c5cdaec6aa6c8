"""Quality bars of chapter 4 (text), measured in one run of the notebooks' recipes.

    python benchmarks/text.py [--only language_models] [--notebooks] [--quick]

Trains the chapter's models with the notebooks' hyperparameters (the RECIPES below; keep them
in step with the notebooks' hyperparameter cells), prints each bar with the measured value,
and writes the numbers that the notebooks' prose quotes to `benchmarks/results/04_text.json`
(`bars.write_results`):
- language_models (notebook 1): character n-grams (add-k and Kneser-Ney, orders 1-8) and
  lzma on the validation text; a GRU trained as in fast mode and as in normal mode, scored on
  the whole validation text; the test-text scores of the best n-gram, the GRU and their
  mixture; how much of each model's samples is copied from the training text.
  Bars: fast-mode GRU below the bigram; normal-mode GRU <= 1.90 bits/char and below the best
  n-gram; the mixture below both on the test text; samples copy < 20% of their 20-character
  pieces.
- subwords (notebook 1): a byte-pair-encoding tokenizer of 1,000 tokens learned from the
  training text; characters per token on the validation text; Kneser-Ney n-grams of tokens
  (orders 2-4) in bits per character, against the character 3-gram. Bar: the token 3-gram
  below the character 3-gram.
- decoding (notebook 2): the normal-mode GRU continues validation-text prompts with greedy
  decoding, sampling at T = 0.5 and 1, top-p 0.9 and beam search; each rule's judge bits
  per character (a Kneser-Ney 7-gram), distinct-4 and repetition rate, next to the real
  continuations. Bar: greedy and beam search repeat more than top-p at T = 1.
- mini_gpt (notebook 3): the normal-mode mini-GPT, scored on overlapping windows, next to
  the GRU trained in the same run and the best n-gram; the KV cache's speed-up over
  recomputation for 200 tokens after a 50-character prompt, batch 1 and 8. Bars: the
  mini-GPT below the best n-gram; the cache >= 3x faster (batch 8).
- summarization (notebook 4): ROUGE-1/2/L on the test pairs of lead-1, a random sentence,
  TextRank and the oracle sentence; the normal-mode pointer-generator (greedy, trigrams
  blocked); the sentence picker fine-tuned from a masked-LM-pretrained encoder and from
  scratch (validation loss over three fine-tuning seeds). Bars: every trained summarizer
  above the random sentence (ROUGE-L); the best one above lead-1.
- text_gan (notebook 5): how well a discriminator tells the normal-mode GRU's samples from
  real text (held-out accuracy); the GRU fine-tuned as a Gumbel-softmax text GAN with three
  seeds; every model's quality-diversity curve over a temperature sweep (judge bits per
  character against distinct-4 on validation prompts) and its validation bits per character;
  the GAN's judge bits minus the MLE curve's at the same distinct-4; exposure bias: how much
  the judge's bits per character of long continuations change from their first 100
  characters to their last 100, against the real text. Bar: both models measured on the same
  scores across the sweep (the comparison is reported, whichever way it goes).
`--notebooks` also runs every notebook of the chapter in normal mode.
`--quick` shrinks the runs (1 epoch) only to check that the script works end to end; it writes
no results.
"""

import sys
import time

import bars  # benchmarks/bars.py, next to this script
import keras
import numpy as np

from course_lib import decoding as decoding_rules
from course_lib import summarization as summ
from course_lib.data import BPETokenizer, CharVocabulary, char_windows, load_pydoc_text
from course_lib.data.summaries import WordVocabulary, load_docstring_pairs, split_sentences
from course_lib.models.char_rnn import CharRNN, fit_char_rnn, mixture_bits, stream_log2_probs
from course_lib.models.gpt import MiniGPT, gpt_step, windowed_log2_probs
from course_lib.models.ngram import NGramModel
from course_lib.models.summarizer import (
    MaskedLanguageModel,
    PointerGenerator,
    TextEncoder,
    encode_pairs,
    encode_sentences,
    fine_tune_picker,
    greedy_summaries,
    mlm_dataset,
    pair_dataset,
)
from course_lib.models.text_gan import TextDiscriminator, TextGAN, fit_discriminator, gan_windows
from course_lib.runtime import setup
from course_lib.text_metrics import copied_fraction, distinct_n, lzma_bits_per_char, repetition_rate

CHAPTER = "04_text"
NOTEBOOKS = {name: f"notebooks/04_text/{name}.ipynb"
             for name in ("01_language_models", "02_decoding", "03_mini_gpt",
                          "04_summarization", "05_text_gans")}
RECIPES = {
    "language_models": {  # notebooks/04_text/01_language_models.ipynb
        "seed": 42, "seq_len": 100, "batch_size": 32, "learning_rate": 3e-3,
        "normal": {"units": 384, "dropout": 0.3, "num_epochs": 12, "max_order": 8},
        "fast": {"units": 128, "dropout": 0.0, "num_epochs": 2, "max_order": 5},
        "prompt": "The for statement ", "sample_chars": 300, "copy_width": 20},
    "subwords": {"vocab_size": 1000, "orders": (2, 3, 4)},  # notebook 1, section 7
    "decoding": {  # notebooks/04_text/02_decoding.ipynb (the GRU: language_models, normal)
        "num_prompts": 24, "prompt_len": 40, "continuation_len": 200, "beam_width": 4,
        "judge_order": 7, "seed": 1},
    "mini_gpt": {  # notebooks/04_text/03_mini_gpt.ipynb, normal mode
        "seed": 42, "context": 128, "width": 128, "num_layers": 4, "num_heads": 4,
        "dropout": 0.1, "batch_size": 32, "peak_learning_rate": 3e-3, "warmup_steps": 100,
        "num_epochs": 12, "prompt_len": 50, "new_tokens": 200, "timing_context": 256},
    "summarization": {  # notebooks/04_text/04_summarization.ipynb, normal mode
        "seed": 42, "min_count": 3, "max_document": 150, "max_summary": 24, "units": 128,
        "seq2seq_epochs": 6, "max_tokens": 128, "max_sentences": 12, "width": 128,
        "pretrain_epochs": 4, "finetune_epochs": 3, "batch_size": 32,
        "finetune_seeds": (42, 43, 44)},
    "text_gan": {  # notebooks/04_text/05_text_gans.ipynb, normal mode (the GRU: language_models)
        "prompt_length": 16, "gan_length": 32, "discriminator_samples": 3000, "gan_steps": 400,
        "g_learning_rate": 1e-4, "d_learning_rate": 1e-4, "gan_seeds": (42, 43, 44),
        "temperatures": (0.6, 0.8, 1.0, 1.2), "num_prompts": 32, "continuation_len": 200,
        "long_prompts": 64, "long_len": 400, "judge_order": 7},
}


def _train_gru(recipe, mode, vocab, train_ids, validation_ids, quick=False):
    """The notebook's GRU in `mode` ("fast" or "normal"), trained afresh (not loaded from
    the cache); returns (model, seconds)."""
    settings = recipe[mode]
    setup(seed=recipe["seed"], fast=mode == "fast")
    start = time.perf_counter()
    model = fit_char_rnn(train_ids, validation_ids, vocab.size, units=settings["units"],
                         dropout=settings["dropout"],
                         num_epochs=1 if quick else settings["num_epochs"],
                         seq_len=recipe["seq_len"], batch_size=recipe["batch_size"],
                         learning_rate=recipe["learning_rate"], cache=False)
    return model, time.perf_counter() - start


def language_models(rows, values, quoted, quick=False):
    recipe = RECIPES["language_models"]
    train_text, validation_text = load_pydoc_text("train"), load_pydoc_text("validation")
    test_text = load_pydoc_text("test")
    vocab = CharVocabulary.from_text(train_text)
    train_ids = vocab.encode(train_text)
    validation_ids = vocab.encode(validation_text, unknown="map")
    test_ids = vocab.encode(test_text, unknown="map")

    start = time.perf_counter()
    ngram = {}
    for smoothing in ("add-k", "kneser-ney"):
        for order in range(1, recipe["normal"]["max_order"] + 1):
            model = NGramModel(order, vocab.size, smoothing=smoothing).fit(train_ids)
            ngram[smoothing, order] = float(-np.log2(model.probabilities(validation_ids)[1:])
                                            .mean())
    best_order = min(range(1, recipe["normal"]["max_order"] + 1),
                     key=lambda order: ngram["kneser-ney", order])
    best_bits, bigram_bits = ngram["kneser-ney", best_order], ngram["kneser-ney", 2]

    lzma_bits = lzma_bits_per_char(validation_text, given=train_text)
    ngram_seconds = time.perf_counter() - start
    for smoothing, name in (("add-k", "addk"), ("kneser-ney", "kn")):
        for order in range(1, recipe["normal"]["max_order"] + 1):
            values[f"{name}{order}_bits"] = ngram[smoothing, order]
    values.update({"best_ngram_order": best_order, "lzma_bits": lzma_bits})
    rows.append(("validation bits/char: KN best order / bigram / lzma",
                 f"order {best_order}: {best_bits:.3f} / {bigram_bits:.3f} / {lzma_bits:.3f}",
                 "(reported)", True, ngram_seconds))

    fast_gru, fast_seconds = _train_gru(recipe, "fast", vocab, train_ids, validation_ids, quick)
    fast_bits = float(-stream_log2_probs(fast_gru, validation_ids, num_streams=64).mean())
    values["fast_gru_bits"] = fast_bits
    rows.append(("fast-mode GRU-128, validation bits/char", f"{fast_bits:.3f}",
                 f"< {bigram_bits:.3f}", fast_bits < bigram_bits, fast_seconds))

    gru, seconds = _train_gru(recipe, "normal", vocab, train_ids, validation_ids, quick)
    gru_log2 = stream_log2_probs(gru, validation_ids, num_streams=64)
    gru_bits = float(-gru_log2.mean())
    kneser_ney = NGramModel(best_order, vocab.size).fit(train_ids)
    kn_log2 = np.log2(kneser_ney.probabilities(validation_ids)[1:])
    weights = np.linspace(0, 1, 11)
    best_weight = float(weights[np.argmin([mixture_bits(gru_log2, kn_log2, w)
                                           for w in weights])])
    test_gru = stream_log2_probs(gru, test_ids, num_streams=64)
    test_kn = np.log2(kneser_ney.probabilities(test_ids)[1:])
    test = {"test_gru_bits": float(-test_gru.mean()), "test_kn_bits": float(-test_kn.mean()),
            "test_mixture_bits": mixture_bits(test_gru, test_kn, best_weight)}
    values.update({"gru_bits": gru_bits, "gru_parameters": gru.count_params(),
                   "gru_seconds": seconds, "mixture_weight": best_weight, **test})
    rows.append(("normal-mode GRU-384, validation bits/char", f"{gru_bits:.3f}",
                 "<= 1.90", gru_bits <= 1.90, seconds))
    rows.append(("  ... against the best n-gram", f"{gru_bits:.3f} vs {best_bits:.3f}",
                 f"< {best_bits:.3f}", gru_bits < best_bits, 0))
    rows.append(("test bits/char: mixture / GRU / KN",
                 f"{test['test_mixture_bits']:.3f} (lambda {best_weight:.1f}) / "
                 f"{test['test_gru_bits']:.3f} / {test['test_kn_bits']:.3f}", "mixture < both",
                 test["test_mixture_bits"] < min(test["test_gru_bits"], test["test_kn_bits"]), 0))

    prompt = recipe["prompt"]
    copies = {}
    for name, model in (("kn", kneser_ney), ("gru", gru)):
        sample = vocab.decode(model.generate(vocab.encode(prompt), recipe["sample_chars"],
                                             seed=1))
        copies[f"{name}_copied"] = copied_fraction(sample, train_text,
                                                    recipe["copy_width"])
    values.update(copies)
    rows.append(("copied 20-char pieces of a sample: KN / GRU",
                 f"{copies['kn_copied']:.2f} / {copies['gru_copied']:.2f}", "both < 0.2",
                 max(copies.values()) < 0.2, 0))

    quoted[NOTEBOOKS["01_language_models"]] = {
        "gru_bits": f"{gru_bits:.2f}", f"kn{best_order}_bits": f"{best_bits:.2f}",
        "lzma_bits": f"{lzma_bits:.2f}", "kn2_bits": f"{bigram_bits:.2f}",
        "fast_gru_bits": f"{fast_bits:.2f}", "mixture_weight": f"{best_weight:.1f}",
        "test_mixture_bits": f"{test['test_mixture_bits']:.2f}",
        "test_gru_bits": f"{test['test_gru_bits']:.2f}",
        "test_kn_bits": f"{test['test_kn_bits']:.2f}"}


def subwords(rows, values, quoted, quick=False):
    recipe = RECIPES["subwords"]
    train_text, validation_text = load_pydoc_text("train"), load_pydoc_text("validation")
    start = time.perf_counter()
    tokenizer = BPETokenizer.train(train_text, vocab_size=recipe["vocab_size"])
    train_tokens = np.array(tokenizer.encode(train_text))
    validation_tokens = np.array(tokenizer.encode(validation_text, unknown="map"))
    num_chars = len(validation_text) - len(tokenizer.decode(validation_tokens[:1]))
    bits = {}
    for order in recipe["orders"]:  # the first token has no context: it is not scored
        model = NGramModel(order, tokenizer.size).fit(train_tokens)
        bits[order] = float(-np.log2(model.probabilities(validation_tokens)[1:]).sum()
                            / num_chars)
    seconds = time.perf_counter() - start
    vocab = CharVocabulary.from_text(train_text)
    char_3gram = NGramModel(3, vocab.size).fit(vocab.encode(train_text))
    char_bits = float(-np.log2(char_3gram.probabilities(
        vocab.encode(validation_text, unknown="map"))[1:]).mean())
    best_order = min(bits, key=bits.get)
    values.update({"bpe_chars_per_token": len(validation_text) / len(validation_tokens),
                   "char_kn3_bits": char_bits, "bpe_best_order": best_order,
                   "bpe_best_bits": bits[best_order],
                   **{f"bpe_kn{order}_bits": value for order, value in bits.items()}})
    rows.append((f"BPE-{recipe['vocab_size']} n-gram bits/char, orders "
                 + "/".join(map(str, bits)), " / ".join(f"{b:.3f}" for b in bits.values()),
                 f"3-gram < char 3-gram {char_bits:.3f}", bits[3] < char_bits, seconds))
    quoted.setdefault(NOTEBOOKS["01_language_models"], {}).update({
        "bpe_chars_per_token": f"{values['bpe_chars_per_token']:.2f}",
        "char_kn3_bits": f"{char_bits:.2f}", "bpe_kn3_bits": f"{bits[3]:.2f}",
        "bpe_best_order": str(best_order), "bpe_best_bits": f"{bits[best_order]:.2f}"})


def _normal_gru(quick):
    """Notebook 1's text and its normal-mode GRU (from the cache when it is there), as the
    notebooks after it load them: (vocab, train_ids, validation_ids, gru)."""
    lm = RECIPES["language_models"]
    setup(seed=lm["seed"])
    train_text, validation_text = load_pydoc_text("train"), load_pydoc_text("validation")
    vocab = CharVocabulary.from_text(train_text)
    train_ids = vocab.encode(train_text)
    validation_ids = vocab.encode(validation_text, unknown="map")
    gru = fit_char_rnn(train_ids, validation_ids, vocab.size, units=lm["normal"]["units"],
                       dropout=lm["normal"]["dropout"],
                       num_epochs=1 if quick else lm["normal"]["num_epochs"], cache=not quick)
    return vocab, train_ids, validation_ids, gru


def _judge_bits(judge, prompts, generated):
    """The judge's bits for each generated character, (prompts, length)."""
    texts = np.concatenate([prompts, generated], axis=1)
    return -np.log2([judge.probabilities(row)[prompts.shape[1]:] for row in texts])


def decoding(rows, values, quoted, quick=False):
    recipe = RECIPES["decoding"]
    start = time.perf_counter()
    vocab, train_ids, validation_ids, gru = _normal_gru(quick)
    judge = NGramModel(recipe["judge_order"], vocab.size).fit(train_ids)
    step = decoding_rules.char_rnn_step(gru)
    length, width = recipe["continuation_len"], recipe["beam_width"]
    num_prompts = 4 if quick else recipe["num_prompts"]
    starts = np.linspace(0, len(validation_ids) - recipe["prompt_len"] - length - 1,
                         num_prompts).astype(int)
    prompts = np.stack([validation_ids[s:s + recipe["prompt_len"]] for s in starts])
    continuations = {"human": np.stack([validation_ids[s + recipe["prompt_len"]:
                                                       s + recipe["prompt_len"] + length]
                                        for s in starts])}
    rules = {"greedy": {"greedy": True}, "t05": {"temperature": 0.5},
             "t10": {"temperature": 1.0}, "topp09": {"top_p": 0.9}, "topp095": {"top_p": 0.95}}
    for name, kwargs in rules.items():
        continuations[name] = decoding_rules.generate(step, prompts, length,
                                                      seed=recipe["seed"], **kwargs)
    continuations["beam"] = np.stack([
        decoding_rules.beam_search(step, prompt, length, beam_width=width)[0]
        for prompt in prompts])
    texts = {}
    for name, generated in continuations.items():
        judge_bits = float(_judge_bits(judge, prompts, generated).mean())
        repetition = float(np.mean([repetition_rate(vocab.decode(row))
                                    for row in generated]))
        values.update({f"{name}_judge_bits": judge_bits,
                       f"{name}_distinct4": distinct_n(generated, 4),
                       f"{name}_repetition": 100 * repetition})  # in %, as the prose
        texts[f"{name}_repetition"] = f"{100 * repetition:.0f}"
        texts[f"{name}_judge_bits"] = f"{judge_bits:.2f}"
    seconds = time.perf_counter() - start
    texts.update({f"{name}_distinct4": f"{values[f'{name}_distinct4']:.2f}"
                  for name in ("human", "topp095")})  # the two the prose compares
    quoted[NOTEBOOKS["02_decoding"]] = texts
    rep = {name: values[f"{name}_repetition"] for name in continuations}
    rows.append(("repetition (% of 10-char pieces): greedy / beam / top-p 0.9 / human",
                 f"{rep['greedy']:.1f} / {rep['beam']:.1f} / {rep['topp09']:.1f} / "
                 f"{rep['human']:.1f}", "greedy, beam > top-p",
                 min(rep["greedy"], rep["beam"]) > rep["topp09"], seconds))
    rows.append(("judge bits/char: greedy / T=1 / top-p 0.9 / human",
                 " / ".join(f"{values[f'{name}_judge_bits']:.3f}"
                            for name in ("greedy", "t10", "topp09", "human")),
                 "(reported)", True, 0))


def mini_gpt(rows, values, quoted, quick=False):
    recipe, lm = RECIPES["mini_gpt"], RECIPES["language_models"]
    train_text, validation_text = load_pydoc_text("train"), load_pydoc_text("validation")
    vocab = CharVocabulary.from_text(train_text)
    train_ids = vocab.encode(train_text)
    validation_ids = vocab.encode(validation_text, unknown="map")
    best = float(-np.log2(NGramModel(7, vocab.size).fit(train_ids)
                          .probabilities(validation_ids)[1:]).mean())
    # the GRU of notebook 1, trained afresh in this run, for the comparison at equal time
    gru, gru_seconds = _train_gru(lm, "normal", vocab, train_ids, validation_ids, quick)
    gru_bits = float(-stream_log2_probs(gru, validation_ids, num_streams=64).mean())

    setup(seed=recipe["seed"])
    model = MiniGPT(vocab.size, max_length=recipe["context"], width=recipe["width"],
                    num_layers=recipe["num_layers"], num_heads=recipe["num_heads"],
                    dropout=recipe["dropout"])
    train_ds = char_windows(train_ids, recipe["context"], recipe["batch_size"], seed=0)
    epochs = 1 if quick else recipe["num_epochs"]
    total_steps = epochs * len(train_ds)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total_steps - recipe["warmup_steps"],
        warmup_target=recipe["peak_learning_rate"], warmup_steps=recipe["warmup_steps"],
        alpha=0.05)
    model.compile(keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    gpt_bits = float(-windowed_log2_probs(model, validation_ids).mean())

    # speed depends on the sizes, not the weights: a same-size model with room for 250
    timing_model = MiniGPT(vocab.size, max_length=recipe["timing_context"],
                           width=recipe["width"], num_layers=recipe["num_layers"],
                           num_heads=recipe["num_heads"])
    prompt = validation_ids[:recipe["prompt_len"]]
    timings = {}
    for name, use_cache in (("recompute", False), ("cache", True)):
        step = gpt_step(timing_model, use_cache=use_cache)
        for batch in (1, 8):
            prompts = np.tile(prompt, (batch, 1))
            decoding_rules.generate(step, prompts, 3, greedy=True)  # trace once
            begin = time.perf_counter()
            decoding_rules.generate(step, prompts, recipe["new_tokens"], greedy=True)
            timings[name, batch] = time.perf_counter() - begin
    speedups = {batch: timings["recompute", batch] / timings["cache", batch] for batch in (1, 8)}
    values.update({"gpt_bits": gpt_bits, "gpt_seconds": seconds,
                   "gpt_parameters": model.count_params(), "gpt_gru_bits": gru_bits,
                   "gpt_gru_seconds": gru_seconds, "kv_speedup_batch1": speedups[1],
                   "kv_speedup_batch8": speedups[8]})
    quoted[NOTEBOOKS["03_mini_gpt"]] = {
        "gpt_bits": f"{gpt_bits:.2f}", "gpt_seconds": f"{seconds:.0f}",
        "gpt_gru_bits": f"{gru_bits:.2f}", "gpt_gru_seconds": f"{gru_seconds:.0f}",
        "kv_speedup_batch1": f"{speedups[1]:.1f}", "kv_speedup_batch8": f"{speedups[8]:.1f}"}
    rows.append(("mini-GPT validation bits/char (vs best n-gram)",
                 f"{gpt_bits:.3f} vs {best:.3f} (GRU {gru_bits:.3f} in {gru_seconds:.0f} s)",
                 f"< {best:.3f}", gpt_bits < best, seconds))
    rows.append(("KV cache speed-up, 200 tokens, batch 1 / 8",
                 f"{speedups[1]:.1f}x / {speedups[8]:.1f}x", ">= 3x (batch 8)",
                 speedups[8] >= 3, 0))


def summarization(rows, values, quoted, quick=False):
    recipe = RECIPES["summarization"]
    setup(seed=recipe["seed"])
    train, validation = load_docstring_pairs("train"), load_docstring_pairs("validation")
    test = load_docstring_pairs("test")
    references = [p["summary"] for p in test]
    tfidf = summ.fit_tfidf(p["document"] for p in train)
    start = time.perf_counter()
    results = {name: summ.mean_rouge(references, [pick(p) for p in test]) for name, pick in (
        ("lead", summ.lead), ("random", summ.random_sentence),
        ("textrank", lambda p: summ.textrank(p, tfidf)), ("oracle", summ.oracle_sentence))}
    rows.append(("test ROUGE-L: lead-1 / random / TextRank / oracle",
                 " / ".join(f"{results[n]['rougeL']:.1f}"
                            for n in ("lead", "random", "textrank", "oracle")),
                 "(reported)", True, time.perf_counter() - start))

    vocab = WordVocabulary.from_texts([p["document"] + " " + p["summary"] for p in train],
                                      min_count=recipe["min_count"])
    arrays = {name: encode_pairs(pairs, vocab, recipe["max_document"], recipe["max_summary"])
              for name, pairs in (("train", train), ("validation", validation),
                                  ("test", test))}
    keras.utils.set_random_seed(recipe["seed"])
    model = PointerGenerator(vocab.size, embedding_dim=recipe["units"], units=recipe["units"])
    model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0))
    start = time.perf_counter()
    model.fit(pair_dataset(arrays["train"][0], recipe["batch_size"]),
              epochs=1 if quick else recipe["seq2seq_epochs"],
              validation_data=pair_dataset(arrays["validation"][0], recipe["batch_size"],
                                           shuffle=False), verbose=0)
    seq2seq_seconds = time.perf_counter() - start
    written = greedy_summaries(model, *arrays["test"], vocab, recipe["max_summary"])
    results["pointer_generator"] = summ.mean_rouge(references, written)

    scores = {name: [summ.sentence_rouge(p, "mean") for p in pairs]
              for name, pairs in (("train", train), ("validation", validation))}
    sentences = {name: encode_sentences(pairs, vocab, recipe["max_tokens"],
                                        recipe["max_sentences"], scores.get(name))
                 for name, pairs in (("train", train), ("validation", validation),
                                     ("test", test))}
    help_paragraphs = [{"id": f"help{i}", "sentences": split_sentences(text)}
                       for i, text in enumerate(load_pydoc_text("train").split("\n\n"))]
    unlabelled = encode_sentences(train + [p for p in help_paragraphs if p["sentences"]],
                                  vocab, recipe["max_tokens"], recipe["max_sentences"])
    keras.utils.set_random_seed(recipe["seed"])
    pretrained = TextEncoder(vocab.size, recipe["max_tokens"], width=recipe["width"])
    bert = MaskedLanguageModel(pretrained)
    bert.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01))
    start = time.perf_counter()
    pretraining = bert.fit(mlm_dataset(unlabelled["tokens"], unlabelled["segments"], vocab.size,
                                       recipe["batch_size"]),
                           epochs=1 if quick else recipe["pretrain_epochs"], verbose=0)
    pretrain_seconds = time.perf_counter() - start
    pretrained_weights = pretrained.get_weights()
    # fine-tuning from scratch and from the pretrained weights, with several seeds: the two
    # validation losses are close, so one run could not tell them apart
    losses = {"scratch": [], "pretrained": []}
    for seed in recipe["finetune_seeds"][:1] if quick else recipe["finetune_seeds"]:
        for name in losses:
            keras.utils.set_random_seed(seed)
            encoder = TextEncoder(vocab.size, recipe["max_tokens"], width=recipe["width"])
            if name == "pretrained":
                encoder(sentences["train"]["tokens"][:1], sentences["train"]["segments"][:1])
                encoder.set_weights(pretrained_weights)
            picker, history = fine_tune_picker(
                encoder, sentences["train"], sentences["validation"],
                1 if quick else recipe["finetune_epochs"], recipe["batch_size"], seed=seed)
            losses[name].append(min(history["val_loss"]))
            if seed == recipe["seed"]:  # the notebook's run
                picks = picker.pick(sentences["test"])
                results[f"picker_{name}"] = summ.mean_rouge(
                    references, [p["sentences"][i] for p, i in zip(test, picks)])
                values[f"picker_{name}_first_percent"] = 100 * float(np.mean(picks == 0))
    losses = {name: (float(np.mean(v)), float(np.std(v))) for name, v in losses.items()}

    for name, scores_ in results.items():
        for metric, value in scores_.items():
            values[f"{name}_{metric}"] = value
    values.update({"seq2seq_seconds": seq2seq_seconds, "pretrain_seconds": pretrain_seconds,
                   "mlm_accuracy_percent": 100 * pretraining.history["accuracy"][-1],
                   "picker_scratch_val_loss": losses["scratch"][0],
                   "picker_scratch_val_loss_std": losses["scratch"][1],
                   "picker_pretrained_val_loss": losses["pretrained"][0],
                   "picker_pretrained_val_loss_std": losses["pretrained"][1]})
    rl = {name: r["rougeL"] for name, r in results.items()}
    trained = ("pointer_generator", "picker_scratch", "picker_pretrained")
    rows.append(("pointer-generator test ROUGE-1/2/L",
                 "/".join(f"{results['pointer_generator'][m]:.1f}" for m in summ.ROUGE_TYPES),
                 f"RL > lead-1 {rl['lead']:.1f}", rl["pointer_generator"] > rl["lead"],
                 seq2seq_seconds))
    rows.append(("picker RL: scratch / pretrained",
                 f"{rl['picker_scratch']:.1f} / {rl['picker_pretrained']:.1f}",
                 f"> random {rl['random']:.1f}",
                 min(rl[n] for n in trained) > rl["random"], pretrain_seconds))
    rows.append((f"picker validation loss over {len(recipe['finetune_seeds'])} seeds: scratch / "
                 "pretrained", " / ".join(f"{m:.3f} +- {s:.3f}" for m, s in losses.values()),
                 "(reported)", True, 0))
    rows.append(("pickers choose the first sentence: scratch / pretrained",
                 f"{values['picker_scratch_first_percent']:.0f}% / "
                 f"{values['picker_pretrained_first_percent']:.0f}%",
                 "(reported)", True, 0))
    quoted[NOTEBOOKS["04_summarization"]] = {
        **{f"{name}_rougeL": f"{value:.1f}" for name, value in rl.items()},
        "pointer_generator_rouge2": f"{results['pointer_generator']['rouge2']:.1f}",
        "lead_rouge2": f"{results['lead']['rouge2']:.1f}",
        **{f"picker_{name}_val_loss": f"{mean:.3f}" for name, (mean, _) in losses.items()},
        **{f"picker_{name}_val_loss_std": f"{std:.3f}" for name, (_, std) in losses.items()},
        **{f"picker_{name}_first_percent": f"{values[f'picker_{name}_first_percent']:.0f}"
           for name in ("scratch", "pretrained")},
        "mlm_accuracy_percent": f"{values['mlm_accuracy_percent']:.0f}"}


def _sample_pairs(generator, train_ids, recipe, num_pairs, seed):
    """Real continuations of training-text prompts and the generator's own (notebook 5)."""
    rng = np.random.default_rng(seed)
    prompt_length, length = recipe["prompt_length"], recipe["gan_length"]
    starts = rng.integers(0, len(train_ids) - prompt_length - length, num_pairs)
    prompts = np.stack([train_ids[s:s + prompt_length] for s in starts])
    real = np.stack([train_ids[s + prompt_length:s + prompt_length + length] for s in starts])
    fake = decoding_rules.generate(decoding_rules.char_rnn_step(generator), prompts, length,
                                   seed=seed)
    return real, fake


def text_gan(rows, values, quoted, quick=False):
    recipe, lm = RECIPES["text_gan"], RECIPES["language_models"]
    vocab, train_ids, validation_ids, gru = _normal_gru(quick)
    judge = NGramModel(recipe["judge_order"], vocab.size).fit(train_ids)
    num_samples = 300 if quick else recipe["discriminator_samples"]
    start = time.perf_counter()
    accuracy = fit_discriminator(TextDiscriminator(vocab.size),
                                 *_sample_pairs(gru, train_ids, recipe, num_samples, 0),
                                 epochs=5)
    rows.append(("critic's held-out accuracy, MLE samples vs real",
                 f"{100 * accuracy:.1f}%", "(reported)", True, time.perf_counter() - start))

    num_prompts, length = (4 if quick else recipe["num_prompts"]), recipe["continuation_len"]
    starts = np.linspace(0, len(validation_ids) - 40 - length - 1, num_prompts).astype(int)
    prompts = np.stack([validation_ids[s:s + 40] for s in starts])
    human = np.stack([validation_ids[s + 40:s + 40 + length] for s in starts])

    def sweep(model):
        step = decoding_rules.char_rnn_step(model)
        points = []
        for temperature in recipe["temperatures"]:
            generated = decoding_rules.generate(step, prompts, length, temperature=temperature,
                                                seed=1)
            points.append((distinct_n(generated, 4),
                           float(_judge_bits(judge, prompts, generated).mean())))
        return np.array(points)

    def validation_bits(model):
        return float(-stream_log2_probs(model, validation_ids, num_streams=64).mean())

    curves, val_bits = {"MLE": sweep(gru)}, {"MLE": validation_bits(gru)}
    start = time.perf_counter()
    seeds = recipe["gan_seeds"][:1] if quick else recipe["gan_seeds"]
    for seed in seeds:  # as the notebook's adversarial_finetune
        keras.utils.set_random_seed(seed)
        generator = CharRNN(vocab.size, embedding_dim=64, units=lm["normal"]["units"])
        generator(np.zeros((1, 1), np.int32))
        generator.set_weights(gru.get_weights())
        critic = TextDiscriminator(vocab.size)
        fit_discriminator(critic, *_sample_pairs(generator, train_ids, recipe, num_samples,
                                                 seed), epochs=5, seed=seed)
        gan = TextGAN(generator, critic, length=recipe["gan_length"],
                      prompt_length=recipe["prompt_length"], seed=seed)
        gan.compile(g_optimizer=keras.optimizers.Adam(recipe["g_learning_rate"], beta_1=0.5),
                    d_optimizer=keras.optimizers.Adam(recipe["d_learning_rate"], beta_1=0.5))
        steps = 16 if quick else recipe["gan_steps"]
        history = gan.fit(gan_windows(train_ids, recipe["prompt_length"], recipe["gan_length"],
                                      32, seed=seed).repeat(),
                          steps_per_epoch=steps // 8, epochs=8, verbose=0).history
        values[f"gan_{seed}_final_d_loss"] = history["d_loss"][-1]
        curves[f"GAN {seed}"] = sweep(generator)
        val_bits[f"GAN {seed}"] = validation_bits(generator)
    gan_seconds = time.perf_counter() - start
    mle = curves["MLE"][np.argsort(curves["MLE"][:, 0])]
    run_gaps = {name: [b - np.interp(d, mle[:, 0], mle[:, 1])
                       for d, b in points if mle[0, 0] <= d <= mle[-1, 0]]
                for name, points in curves.items() if name != "MLE"}
    gaps = [gap for run in run_gaps.values() for gap in run]
    for name, run in run_gaps.items():
        values[f"gap_{name.split()[-1]}"] = float(np.mean(run))
    human_distinct = distinct_n(human, 4)
    human_bits = float(_judge_bits(judge, prompts, human).mean())
    values["human_offset_abs"] = abs(human_bits - np.interp(human_distinct, mle[:, 0],
                                                            mle[:, 1]))
    for name, points in curves.items():
        key = name.lower().replace(" ", "_")
        values[f"{key}_val_bits"] = val_bits[name]
        for (d, b), t in zip(points, recipe["temperatures"]):
            values[f"{key}_t{t}_distinct4"], values[f"{key}_t{t}_judge_bits"] = d, b
    gan_val = float(np.mean([v for k, v in val_bits.items() if k != "MLE"]))
    values.update({"d_accuracy_percent": 100 * accuracy, "gap_mean": float(np.mean(gaps)),
                   "gap_count": len(gaps), "gap_worse_percent": 100 * float(np.mean(
                       np.array(gaps) > 0)), "gan_val_bits": gan_val,
                   "mle_val_bits": val_bits["MLE"], "gan_seconds": gan_seconds})
    rows.append(("MLE judge bits, T = " + "/".join(map(str, recipe["temperatures"])),
                 " / ".join(f"{b:.2f}" for _, b in curves["MLE"]),
                 "both measured", True, 0))
    rows.append((f"GAN ({len(seeds)} seeds) - MLE bits, equal distinct-4",
                 f"{np.mean(gaps):+.2f} over {len(gaps)} points ({np.mean(np.array(gaps) > 0):.0%}"
                 " worse)", "(reported)", len(gaps) > 0, gan_seconds))
    rows.append(("validation bits/char: MLE / GAN mean", f"{val_bits['MLE']:.3f} / {gan_val:.3f}",
                 "(reported)", True, 0))

    long_prompts_count = 8 if quick else recipe["long_prompts"]
    long_len = recipe["long_len"]
    starts = np.linspace(0, len(validation_ids) - 40 - long_len - 1,
                         long_prompts_count).astype(int)
    long_prompts = np.stack([validation_ids[s:s + 40] for s in starts])
    texts = {"human": np.stack([validation_ids[s + 40:s + 40 + long_len] for s in starts])}
    for temperature in (0.8, 1.0):
        texts[f"t{temperature}"] = decoding_rules.generate(
            decoding_rules.char_rnn_step(gru), long_prompts, long_len, temperature=temperature,
            seed=2)
    for name, generated in texts.items():
        bits = _judge_bits(judge, long_prompts, generated)
        first, last = bits[:, :100].mean(axis=1), bits[:, -100:].mean(axis=1)
        values[f"{name}_first100_bits"], values[f"{name}_last100_bits"] = first.mean(), last.mean()
        values[f"{name}_drift"] = float((last - first).mean())
        values[f"{name}_drift_se"] = float((last - first).std() / np.sqrt(len(first)))
    rows.append(("judge bits, last - first 100: real/T0.8/T1",
                 " / ".join(f"{values[f'{n}_drift']:+.2f} +- {values[f'{n}_drift_se']:.2f}"
                            for n in texts), "(reported)", True, 0))
    quoted[NOTEBOOKS["05_text_gans"]] = {
        "gap_mean": f"{np.mean(gaps):.2f}",
        "gap_worse_percent": f"{values['gap_worse_percent']:.0f}",
        "gap_count": str(len(gaps)),
        "mle_val_bits": f"{val_bits['MLE']:.3f}", "gan_val_bits": f"{gan_val:.3f}",
        "d_accuracy_percent": f"{100 * accuracy:.0f}",
        **{f"gap_{seed}": f"{values[f'gap_{seed}']:.2f}" for seed in seeds},
        "human_offset_abs": f"{values['human_offset_abs']:.2f}",
        "t1.0_drift": f"{values['t1.0_drift']:.2f}",
        "t1.0_drift_se": f"{values['t1.0_drift_se']:.2f}",
        **{f"{n}_first100_bits": f"{values[f'{n}_first100_bits']:.2f}" for n in texts},
        **{f"{n}_last100_bits": f"{values[f'{n}_last100_bits']:.2f}" for n in texts}}


BENCHMARKS = {"language_models": language_models, "subwords": subwords, "decoding": decoding,
              "mini_gpt": mini_gpt, "summarization": summarization, "text_gan": text_gan}


def main():
    return bars.main(__doc__.split("\n\n")[0], BENCHMARKS, CHAPTER)


if __name__ == "__main__":
    sys.exit(main())
