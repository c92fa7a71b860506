package flow

// HeaderExported is the Kafka header the sensor's exporter puts on every
// flow record: the export stamp, a decimal count of nanoseconds since the
// Unix epoch that is strictly increasing within one exporter (the time the
// record's batch began, moved past the previous stamp). It gives
// the order in which a sensor exported its records across the partitions
// of the flows topic; the pipeline's repartition stage evaluates the
// records it gathers from several partitions in that order, so that
// aggregations across devices see what `edgeward run` sees.
const HeaderExported = "edgeward-exported"
