# GGUF reader and model loading tests.
add_library(chatd_gguf_builder STATIC ${CMAKE_CURRENT_SOURCE_DIR}/gguf_builder.c)
target_include_directories(chatd_gguf_builder PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
chatd_test(test_gguf test_gguf.c LIBS chatd_gguf_builder)
chatd_test(test_models test_models.c)
