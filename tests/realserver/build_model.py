"""Build the tiny models the real-server tests serve: nothing is downloaded.

Run with the vLLM environment's Python (it needs torch, transformers and tokenizers):

    .venv-vllm/bin/python tests/realserver/build_model.py OUT_DIR

writes two Hugging Face model folders, deterministically, in about ten seconds:

    OUT_DIR/random/     Llama architecture (hidden 128, 2 layers, 4 heads, 2 KV heads),
                        random weights: it writes arbitrary text and never picks a tool
    OUT_DIR/scripted/   the same, rewired so that greedy decoding writes a fixed tool
                        call after the prompt (see `script_weights`)

and, with `--bench` (`build_model.py OUT_DIR --bench`), a third:

    OUT_DIR/bench/      Llama architecture (hidden 1024, 4 layers, 16 heads, 2 KV
                        heads), random weights, 56M parameters: large enough that on a
                        CPU recomputing a context of a thousand tokens takes about as
                        long as a quick tool call (about 0.1 s here), which is what KV
                        retention trades against (runtime/bench/vllm_ttl.py)

Both share one tokenizer: a byte-level BPE (the GPT-2 scheme, Radford et al. 2019)
trained with the `tokenizers` library on the standard library's own .py files, with
ChatML turn markers and the Hermes tool-call tags, and a chat template that renders
tools, assistant tool calls as `<tool_call>{"name": ..., "arguments": ...}</tool_call>`
(what vLLM's `hermes` tool parser reads, vllm/tool_parsers/hermes_tool_parser.py) and
tool results. Each folder gets a `BUILD_ID` (a hash of this file): a folder whose id
differs is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import sysconfig
from pathlib import Path

VOCAB_SIZE = 4096
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Not "special": vLLM strips special tokens from the text before its tool parser reads it.
TOOL_TAGS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
# The scripted model's one tool call, written as a single added token.
SCRIPTED_TOOL = "get_weather"
SCRIPTED_ARGUMENTS = {"city": "Paris"}
SCRIPTED_CALL = json.dumps({"name": SCRIPTED_TOOL, "arguments": SCRIPTED_ARGUMENTS})
TRAINING_FILES = 160

# Newlines right after a block tag are written as {{ '\\n' }}: transformers renders chat
# templates with trim_blocks, which drops them.
CHAT_TEMPLATE = (
    "{% set ns = namespace(system='') %}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set ns.system = messages[0]['content'] %}{% endif %}"
    "{% if tools %}"
    "<|im_start|>system\n{{ ns.system }}{% if ns.system %}{{ '\\n\\n' }}{% endif %}"
    "You may call these tools:\n<tools>"
    "{% for tool in tools %}{{ '\\n' }}{{ tool | tojson }}{% endfor %}{{ '\\n' }}</tools>\n"
    "Answer a call as <tool_call>{\"name\": NAME, \"arguments\": ARGS}</tool_call>"
    "<|im_end|>\n"
    "{% elif ns.system %}<|im_start|>system\n{{ ns.system }}<|im_end|>\n{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' and loop.first %}"
    "{% elif message['role'] == 'assistant' %}"
    "<|im_start|>assistant\n{{ message['content'] or '' }}"
    "{% for call in message['tool_calls'] or [] %}"
    "{% set f = call['function'] if call['function'] is defined else call %}"
    "<tool_call>{\"name\": {{ f['name'] | tojson }}, \"arguments\": "
    "{% if f['arguments'] is string %}{{ f['arguments'] }}{% else %}"
    "{{ f['arguments'] | tojson }}{% endif %}}</tool_call>"
    "{% endfor %}<|im_end|>\n"
    "{% elif message['role'] == 'tool' %}"
    "<|im_start|>user\n<tool_response>\n{{ message['content'] }}\n</tool_response>"
    "<|im_end|>\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_id() -> str:
    """A hash of this builder: folders built by another version are rebuilt."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def training_text() -> list[str]:
    """The first TRAINING_FILES .py files of the standard library, in name order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py"))[:TRAINING_FILES]
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
        pad_token="<|endoftext|>", unk_token=None)
    fast.add_tokens(TOOL_TAGS + [SCRIPTED_CALL], special_tokens=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


# name -> (hidden, intermediate, layers, attention heads); every model has 2 KV heads.
SHAPES = {"random": (128, 256, 2, 4), "scripted": (128, 256, 2, 4),
          "bench": (1024, 3072, 4, 16)}


def build_model(tokenizer, name: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    hidden, intermediate, layers, heads = SHAPES[name]
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
        max_position_embeddings=4096, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id, torch_dtype="bfloat16")
    model = LlamaForCausalLM(config)
    if name == "scripted":
        script_weights(model, tokenizer)
    model.generation_config.eos_token_id = eos
    return model.to(torch.bfloat16)


def script_chain(tokenizer) -> list[int]:
    """The token ids greedy decoding walks: the generation prompt's last token, then
    the tool call, then end of turn."""
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                           add_generation_prompt=True, tokenize=False)
    last = tokenizer.encode(prompt, add_special_tokens=False)[-1]
    names = ["<tool_call>", SCRIPTED_CALL, "</tool_call>", "<|im_end|>"]
    return [last] + [tokenizer.convert_tokens_to_ids(n) for n in names]


def script_weights(model, tokenizer) -> None:
    """Make greedy decoding follow `script_chain`.

    With every attention and MLP output projection zero, each layer adds nothing to the
    residual stream, so the last hidden state is the (normalised) embedding of the
    current token alone. Token i of the chain gets a unit embedding on its own dimension
    d_i, and the output head's row for token i+1 a large weight on d_i: token i's logit
    for token i+1 is then about 20 x sqrt(hidden), far above any random row's."""
    import torch

    chain = script_chain(tokenizer)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        for dim, (token, successor) in enumerate(zip(chain, chain[1:])):
            emb[token].zero_()
            emb[token, dim] = 1.0
            head[successor, dim] = 20.0


def write(out: Path, name: str, tokenizer) -> Path:
    folder = out / name
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_model(tokenizer, name).save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "BUILD_ID").write_text(build_id())
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def is_current(folder: Path) -> bool:
    stamp = folder / "BUILD_ID"
    return stamp.is_file() and stamp.read_text() == build_id()


def main(argv: list[str]) -> int:
    bench = "--bench" in argv
    args = [a for a in argv if a != "--bench"]
    if len(args) != 1:
        print("usage: build_model.py OUT_DIR [--bench]", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    names = ["random", "scripted"] + (["bench"] if bench else [])
    wanted = [name for name in names if not is_current(out / name)]
    if wanted:
        tokenizer = build_tokenizer()
        for name in wanted:
            print(f"built {write(out, name, tokenizer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
