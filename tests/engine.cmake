chatd_test(test_sampler test_sampler.c)
chatd_test(test_sched test_sched.c)
