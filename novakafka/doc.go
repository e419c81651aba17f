// Package novakafka is Nova's [broker.Broker] on Apache Kafka.
package novakafka
