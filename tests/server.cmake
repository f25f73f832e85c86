# The HTTP server tests: the official OpenAI Node SDK and raw HTTP against chatd serve.
foreach(t api reference load ops tools)
  add_test(NAME server.${t} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/server/run.sh ${CMAKE_BINARY_DIR} ${t}.test.mjs)
  set_tests_properties(server.${t} PROPERTIES SKIP_RETURN_CODE 77 DEPENDS models.regen
    ENVIRONMENT "${CHATD_TEST_ENV}" TIMEOUT 900 RUN_SERIAL TRUE)
endforeach()
