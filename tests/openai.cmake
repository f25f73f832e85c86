# OpenAI request parsing and response writing (server/openai.c), checked against the
# response schemas in ../shared/spec with the reusable validator in schema_check.c.
add_library(chatd_schema_check STATIC ${CMAKE_CURRENT_SOURCE_DIR}/schema_check.c)
target_include_directories(chatd_schema_check PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(chatd_schema_check PUBLIC PkgConfig::CJSON m)
chatd_test(test_openai test_openai.c LIBS chatd_schema_check)
chatd_test(test_config test_config.c)
# JSON Schema to constraint grammar (server/schema.c), run against engine/constrain.c.
chatd_test(test_schema test_schema.c LIBS chatd_schema_check chatd_gguf_builder)
# Generated text into reasoning, content and tool calls (server/chatparse.c).
chatd_test(test_chatparse test_chatparse.c)
