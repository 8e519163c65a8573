// A CommonJS service's start: its framework and driver loaded, its pool made, then done.
const express = require('express');
const pg = require('pg');

const pool = new pg.Pool({ max: 10 });
express();
pool.end();
