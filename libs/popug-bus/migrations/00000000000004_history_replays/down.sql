DROP TABLE history_replays;
