package novakafka_test

const childEnv = "NOVAKAFKA_CHILD"

func runChild() {}
