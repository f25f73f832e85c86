# Chat templates: each model's GGUF template against the Jinja2 renderings and llama.cpp's
# prompt ids (test_template MODEL), the public template files, the control-token injection
# test, and the interpreter's features one by one (test_template_unit).
foreach(what injection templates llama-spm-tiny-f32 llama-spm-tiny-f16 llama-spm-tiny-bf16
        qwen2-tiny-q8_0 qwen2-tiny-q4_k_m qwen3-tiny-q8_0 r1-qwen-tiny-q4_0 llama3-tiny-q6_k)
  chatd_test(test_template test_template.c ARGS ${what})
endforeach()
chatd_test(test_template_unit test_template_unit.c)
# the unit test walks the public template files when they are there, without requiring them
target_compile_definitions(test_template_unit PRIVATE CHATD_SHARED_GUESS="${CHATD_SHARED_DEFAULT}")
