# Teacher-forced forward-pass tests against ../shared/reference, per model and mode:
# rule B (q8 activations) with 1 and 2 threads, the portable C (first 3 cases: it is slow)
# and the AVX2 kernels,
# OpenBLAS and kernel paths, batched with other sequences; rule A for float activations.
set(CHATD_REF_MODELS stories260K qwen2-tiny-q8_0 qwen2-tiny-q4_k_m qwen3-tiny-q8_0
    r1-qwen-tiny-q4_0 llama3-tiny-q6_k llama-spm-tiny-f32 llama-spm-tiny-f16 llama-spm-tiny-bf16)
foreach(m ${CHATD_REF_MODELS})
  chatd_test(test_forward test_forward.c ARGS ${m}.gguf q8 2 avx2)
  chatd_test(test_forward test_forward.c ARGS ${m}.gguf q8-kernels 1 avx2)
  chatd_test(test_forward test_forward.c ARGS ${m}.gguf q8-kernels 2 scalar)
  chatd_test(test_forward test_forward.c ARGS ${m}.gguf q8-blas 1 avx2)
  chatd_test(test_forward test_forward.c ARGS ${m}.gguf float 2 avx2)
  chatd_test(test_forward test_forward.c ARGS ${m}.gguf batched 2 avx2)
endforeach()
foreach(m ${CHATD_REF_MODELS})
  chatd_test(test_batching test_batching.c ARGS ${m}.gguf)
endforeach()
