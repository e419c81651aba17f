package novarabbitmq

// childEnv names the role of a child process of a crash test.
const childEnv = "NOVARABBITMQ_TEST_CHILD"

func runChild(role string) {}
