# Tokenizer tests: one CTest test per model for the reference vectors (test_tokenizer), and
# the property test over every tokenizer family (test_tokenizer_prop).
foreach(model stories260K llama-spm-tiny-f32 llama-spm-tiny-f16 llama-spm-tiny-bf16
        qwen2-tiny-q8_0 qwen2-tiny-q4_k_m qwen3-tiny-q8_0 r1-qwen-tiny-q4_0 llama3-tiny-q6_k)
  chatd_test(test_tokenizer test_tokenizer.c ARGS ${model})
endforeach()
chatd_test(test_tokenizer_prop test_tokenizer_prop.c LIBS Threads::Threads)
chatd_test(test_tokenizer_unit test_tokenizer_unit.c LIBS chatd_gguf_builder)
