// An ES module service's start: its framework and driver loaded, its pool made, then done.
import express from 'express';
import pg from 'pg';

const pool = new pg.Pool({ max: 10 });
express();
await pool.end();
