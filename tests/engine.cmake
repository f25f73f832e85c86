chatd_test(test_sampler test_sampler.c)
chatd_test(test_sched test_sched.c)
# the command line end to end: run, score (through compare_greedy.py), info, tokenize
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
  add_test(NAME cli.end_to_end COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.py $<TARGET_FILE:chatd>)
  set_tests_properties(cli.end_to_end PROPERTIES SKIP_RETURN_CODE 77 DEPENDS models.regen
    ENVIRONMENT "${CHATD_TEST_ENV};CHATD_SHARED_DEFAULT=${CHATD_SHARED_DEFAULT}" TIMEOUT 900)
endif()
chatd_test(test_constrain test_constrain.c)
