// Package novarabbitmq is a broker.Broker on RabbitMQ.
package novarabbitmq
