// The cold-start floor: a Lambda handler that does nothing, started exactly like Shutter's.
export const handler = async () => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: '{"data":{"hello":"world"}}',
});
