// Package pipeline is the consuming side of edgeward: it reads flow records
// (from Kafka, or in-process from the sensor), enriches them, evaluates the
// rules and publishes alerts. It shares only package flow with the sensor.
package pipeline
