import { describe, expect, it } from 'vitest';
import { unresolvedReferences } from '../../scripts/template-references';

describe('template references', () => {
  const template = {
    Parameters: { Stage: { Type: 'String' } },
    Resources: {
      Bucket: { Type: 'AWS::S3::Bucket', Properties: { BucketName: { 'Fn::Sub': '${AWS::StackName}-${Stage}-runs' } } },
      Role: { Type: 'AWS::IAM::Role', DependsOn: ['Bucket'], Properties: { Arn: { 'Fn::GetAtt': ['Bucket', 'Arn'] } } },
      Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': 'Role.Arn' }, Env: { Ref: 'Bucket' } } },
    },
    Outputs: { Url: { Value: { 'Fn::Sub': ['https://${Host}/${Stage}', { Host: 'example.com' }] } } },
  };

  it('accepts references to resources, parameters, pseudo parameters and Fn::Sub variables', () => {
    expect(unresolvedReferences(template)).toEqual([]);
  });

  it('names every reference that resolves to nothing, and where it is', () => {
    const broken = {
      ...template,
      Resources: {
        ...template.Resources,
        Alarm: { Type: 'AWS::CloudWatch::Alarm', DependsOn: 'Gone', Properties: { Topic: { Ref: 'MissingTopic' }, Arn: { 'Fn::GetAtt': ['Stage', 'Arn'] }, Name: { 'Fn::Sub': '${Nowhere.Arn}-${!Literal}' } } },
      },
    };

    expect(unresolvedReferences(broken)).toEqual([
      { at: 'Resources.Alarm.DependsOn', reference: 'Gone' },
      { at: 'Resources.Alarm.Properties.Topic.Ref', reference: 'MissingTopic' },
      // A parameter has no attributes: GetAtt must name a resource.
      { at: 'Resources.Alarm.Properties.Arn.Fn::GetAtt', reference: 'Stage' },
      { at: 'Resources.Alarm.Properties.Name.Fn::Sub', reference: 'Nowhere' },
    ]);
  });
});
