chatd_test(test_sampler test_sampler.c)
